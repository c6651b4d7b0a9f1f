"""auth:* over real sockets against a real server."""
from __future__ import annotations

import time

import aiohttp
import jwt
import pytest
import socketio

from tests.client import Client, unique_email
from tests.conftest import TEST_SECRET


async def test_register_signs_in_the_same_socket(clients):
    c = await clients()
    assert (await c.err("auth:me"))["code"] == "unauthorized"
    out = await c.register(unique_email(), username="alice_1")
    assert out["user"]["username"] == "alice_1"
    assert set(out["user"]) >= {"id", "email", "username", "role", "isGuest", "createdAt"}
    me = await c.ok("auth:me")
    assert me["id"] == out["user"]["id"] and me["role"] == "user" and not me["isGuest"]


async def test_connect_with_token_and_login(clients):
    email = unique_email()
    a = await clients()
    reg = await a.register(email)
    b = await clients(token=reg["tokens"]["accessToken"])
    assert (await b.ok("auth:me"))["email"] == email
    c = await clients()
    out = await c.ok("auth:login", {"email": email.upper(), "password": "correct horse"})
    assert out["user"]["id"] == reg["user"]["id"]
    wrong = await c.err("auth:login", {"email": email, "password": "wrong password"})
    assert wrong["code"] == "unauthorized"


async def test_duplicate_email_is_conflict(clients):
    email = unique_email()
    a = await clients()
    await a.register(email)
    b = await clients()
    err = await b.err("auth:register", {"email": email.upper(), "password": "another pw"})
    assert err["code"] == "conflict" and "email" in err["message"]


async def test_password_over_72_bytes_is_refused_not_truncated(clients):
    c = await clients()
    err = await c.err("auth:register", {"email": unique_email(), "password": "é" * 40})
    assert err["code"] == "bad_request" and "72" in err["message"]


async def test_refresh_rotates_and_reuse_revokes_family(clients):
    c = await clients()
    reg = await c.register(unique_email())
    first = reg["tokens"]["refreshToken"]
    second = (await c.ok("auth:refresh", {"refreshToken": first}))["tokens"]["refreshToken"]
    assert second != first
    # Replaying the first token: refused, and the family (incl. the second) is revoked.
    err = await c.err("auth:refresh", {"refreshToken": first})
    assert err["code"] == "unauthorized" and err["details"]["reason"] == "reused"
    err = await c.err("auth:refresh", {"refreshToken": second})
    assert err["code"] == "unauthorized"


async def test_expired_token_on_event_then_refresh_continues(tmp_path):
    from tests.conftest import RunningServer, make_settings

    srv = await RunningServer(make_settings(tmp_path, access_token_minutes=0.02)).start()
    c = await Client(srv.url).connect()
    try:
        reg = await c.register(unique_email())
        await c.wait_for("auth:expired", timeout=5)  # pushed at expiry (~1.2 s)
        err = await c.err("auth:me")
        assert err["code"] == "token_expired"
        await c.ok("auth:refresh", {"refreshToken": reg["tokens"]["refreshToken"]})
        assert (await c.ok("auth:me"))["id"] == reg["user"]["id"]
    finally:
        await c.close()
        await srv.stop()


async def test_guest_then_upgrade_keeps_identity_and_data(clients):
    c = await clients()
    g = await c.guest()
    assert g["user"]["isGuest"] and g["user"]["remainingMessages"] == 20
    assert g["user"]["remainingImports"] == 2
    project = await c.ok("project:create", {"name": "guest work"})
    email = unique_email("upgraded")
    up = await c.ok("auth:upgrade", {"email": email, "password": "new password"})
    assert up["user"]["id"] == g["user"]["id"] and not up["user"]["isGuest"]
    assert [p["id"] for p in await c.ok("project:list")] == [project["id"]]
    again = await clients()
    out = await again.ok("auth:login", {"email": email, "password": "new password"})
    assert out["user"]["id"] == g["user"]["id"]
    assert (await c.err("auth:upgrade", {"email": unique_email(), "password": "x" * 9}))[
        "code"] == "conflict"


async def test_logout_revokes_refresh_and_makes_socket_anonymous(clients):
    c = await clients()
    reg = await c.register(unique_email())
    await c.ok("auth:logout", {"refreshToken": reg["tokens"]["refreshToken"]})
    assert (await c.err("auth:me"))["code"] == "unauthorized"
    err = await c.err("auth:refresh", {"refreshToken": reg["tokens"]["refreshToken"]})
    assert err["code"] == "unauthorized"


async def test_a_refused_logout_leaves_someone_elses_sign_in_alone(clients):
    a, b = await clients(), await clients()
    ra = await a.register(unique_email("a"))
    await b.register(unique_email("b"))
    refused = await b.err("auth:logout", {"refreshToken": ra["tokens"]["refreshToken"]})
    assert refused["code"] == "bad_request"
    # A's token still works once, and is not treated as a replay.
    out = await a.ok("auth:refresh", {"refreshToken": ra["tokens"]["refreshToken"]})
    assert out["user"]["id"] == ra["user"]["id"]
    assert await a.ok("auth:refresh", {"refreshToken": out["tokens"]["refreshToken"]})


@pytest.mark.parametrize("kind", ["garbage", "expired", "wrong_key", "alg_none"])
async def test_bad_tokens_are_refused_at_connect(server, kind):
    now = int(time.time())
    claims = {"sub": "x", "sid": "f", "typ": "access", "exp": now + 600, "iat": now}
    token = {
        "garbage": "not.a.jwt",
        "expired": jwt.encode({**claims, "exp": now - 5}, TEST_SECRET, algorithm="HS256"),
        "wrong_key": jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg_none": jwt.encode(claims, None, algorithm="none"),
    }[kind]
    client = socketio.AsyncClient(reconnection=False)
    refusals = []
    client.on("connect_error", lambda data: refusals.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, auth={"token": token}, transports=["websocket"])
    expected = "token_expired" if kind == "expired" else "unauthorized"
    # SPEC §2: the connect_error data is {code, message} (err.data.code in the JS client).
    assert refusals and refusals[0]["data"]["code"] == expected, refusals
    assert refusals[0]["data"]["message"]
    await client.disconnect()


async def test_rest_auth_round_trip(server):
    async with aiohttp.ClientSession() as http:
        email = unique_email()
        r = await http.post(f"{server.url}/api/auth/register",
                            json={"email": email, "password": "rest password"})
        assert r.status == 201
        reg = (await r.json())["data"]
        r = await http.post(f"{server.url}/api/auth/login", json={"email": email, "password": "no"})
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        r = await http.post(f"{server.url}/api/auth/refresh",
                            json={"refreshToken": reg["tokens"]["refreshToken"]})
        new = (await r.json())["data"]["tokens"]
        r = await http.post(f"{server.url}/api/auth/logout",
                            json={"refreshToken": new["refreshToken"]},
                            headers={"Authorization": f"Bearer {new['accessToken']}"})
        assert r.status == 200
        r = await http.post(f"{server.url}/api/auth/logout", json={})
        assert r.status == 401
        r = await http.post(f"{server.url}/api/auth/login", data=b"{not json")
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
