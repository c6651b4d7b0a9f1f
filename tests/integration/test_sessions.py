"""Sessions end everywhere at once (issue 16 G): a logout, a replayed refresh token, a
deactivated or deleted account — the session's sockets get ``auth:revoked`` and are
disconnected, its access token is refused on connect, on each event and on REST until it
would have expired. (Across instances: tests/cluster/test_sessions_cluster.py.)"""
from __future__ import annotations

from server.keys import services_of
from tests.client import Client, eventually, unique_email
from tests.files_helpers import download, upload
from tests.integration.test_signin_limits import refusal

PASSWORD = "correct horse"


async def sign_in(clients, email: str) -> tuple[Client, dict]:
    c = await clients()
    out = await c.ok("auth:login", {"email": email, "password": PASSWORD})
    return c, out["tokens"]


async def test_logout_ends_that_session_everywhere_and_only_that_one(server, clients):
    email = unique_email()
    owner = await clients()
    await owner.register(email, PASSWORD)
    project = await owner.ok("project:create", {"name": "p"})
    status, body = await upload(server.url, owner.tokens["accessToken"], project["id"], b"x" * 10)
    assert status == 201, body
    file_id = body["data"]["id"]

    laptop, laptop_tokens = await sign_in(clients, email)
    tab = await clients(token=laptop_tokens["accessToken"])  # same sign-in, second socket
    phone, phone_tokens = await sign_in(clients, email)  # another sign-in

    assert (await laptop.ok("auth:logout", {"refreshToken": laptop_tokens["refreshToken"]})) \
        == {"revoked": 1}
    assert (await tab.wait_for("auth:revoked")) == {"reason": "logout"}
    await eventually(lambda: not tab.sio.connected)
    assert laptop.sio.connected  # the caller stays, signed out
    assert (await laptop.err("auth:me"))["code"] == "unauthorized"

    dead = laptop_tokens["accessToken"]
    refused = await refusal(server, "127.0.0.1", token=dead)
    assert refused["code"] == "unauthorized" and refused["details"]["reason"] == "revoked"
    status, _, _ = await download(server.url, dead, file_id)
    assert status == 401
    status, body = await upload(server.url, dead, project["id"], b"y")
    assert status == 401 and body["error"]["code"] == "unauthorized"

    # The other sign-in is untouched.
    assert phone.sio.connected and (await phone.ok("auth:me"))["email"] == email
    status, data, _ = await download(server.url, phone_tokens["accessToken"], file_id)
    assert status == 200 and data == b"x" * 10
    await (await clients(token=phone_tokens["accessToken"])).ok("auth:me")


async def test_logout_without_a_token_ends_every_session(server, clients):
    email = unique_email()
    first = await clients()
    await first.register(email, PASSWORD)
    second, _ = await sign_in(clients, email)
    out = await first.ok("auth:logout")
    assert out == {"revoked": 2}
    assert (await second.wait_for("auth:revoked")) == {"reason": "logout"}
    await eventually(lambda: not second.sio.connected)


async def test_a_replayed_refresh_token_ends_the_session_and_its_sockets(server, clients):
    email = unique_email()
    victim = await clients()
    await victim.register(email, PASSWORD)
    stolen = victim.tokens["refreshToken"]
    access = victim.tokens["accessToken"]
    await victim.ok("auth:refresh", {"refreshToken": stolen})  # the victim rotates
    other_socket = await clients(token=access)  # still the same sign-in
    thief = await clients()
    err = await thief.err("auth:refresh", {"refreshToken": stolen})
    assert err["details"]["reason"] == "reused"
    for c in (victim, other_socket):
        assert (await c.wait_for("auth:revoked")) == {"reason": "reused"}
    await eventually(lambda: not victim.sio.connected and not other_socket.sio.connected)
    assert thief.sio.connected
    entries = (await services_of(server.app).store.audit.list_entries(
        kind="refresh_reused")).items
    assert [e.target_id for e in entries] == [victim.user["id"]]


async def test_the_replaying_socket_gets_its_answer_and_is_signed_out(server, clients):
    c = await clients()
    await c.register(unique_email(), PASSWORD)
    first = c.tokens["refreshToken"]
    await c.ok("auth:refresh", {"refreshToken": first})
    err = await c.err("auth:refresh", {"refreshToken": first})
    assert err["details"]["reason"] == "reused"
    assert (await c.wait_for("auth:revoked")) == {"reason": "reused"}
    assert c.sio.connected and (await c.err("auth:me"))["code"] == "unauthorized"


async def test_deactivated_or_deleted_accounts_tokens_are_refused(server, clients):
    store = services_of(server.app).store
    for change in ("deactivate", "delete"):
        c = await clients()
        await c.register(unique_email(), PASSWORD)
        project = await c.ok("project:create", {"name": "p"})
        token = c.tokens["accessToken"]
        if change == "deactivate":
            await store.users.update_user(c.user["id"], is_active=False)
            code, http = "forbidden", 403
        else:
            await store.users.delete_user(c.user["id"])
            code, http = "unauthorized", 401
        refused = await refusal(server, "127.0.0.1", token=token)
        assert refused["code"] == code
        status, body = await upload(server.url, token, project["id"], b"z")
        assert status == http and body["error"]["code"] == code


async def test_upgrading_a_guest_ends_its_other_guest_sockets(server, clients):
    c = await clients()
    await c.guest()
    other = await clients(token=c.tokens["accessToken"])
    await c.ok("auth:upgrade", {"email": unique_email(), "password": PASSWORD})
    assert (await other.wait_for("auth:revoked")) == {"reason": "upgraded"}
    await eventually(lambda: not other.sio.connected)
    assert (await c.ok("auth:me"))["isGuest"] is False


async def test_a_token_without_a_session_is_refused(server):
    import jwt

    from tests.conftest import TEST_SECRET
    token = jwt.encode({"sub": "x", "typ": "access", "exp": 4_000_000_000}, TEST_SECRET,
                       algorithm="HS256")
    refused = await refusal(server, "127.0.0.1", token=token)
    assert refused["code"] == "unauthorized"
