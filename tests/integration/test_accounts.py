"""Accounts (issue 12): sign in by email or username, change your own name, email and
password (a new password ends your other sessions), your files and conversations across
projects."""
from __future__ import annotations

from tests.client import eventually, unique_email
from tests.files_helpers import upload

PASSWORD = "correct horse"


async def registered(clients, username: str | None = None):
    c = await clients()
    await c.register(unique_email(), PASSWORD, **({"username": username} if username else {}))
    return c


async def test_login_by_email_or_username(clients):
    name = f"ada_{unique_email().split('@')[0][-8:]}"
    c = await registered(clients, name)
    other = await clients()
    for payload in ({"login": name.upper()}, {"login": c.user["email"]},
                    {"email": c.user["email"]}):
        out = await other.ok("auth:login", {**payload, "password": PASSWORD})
        assert out["user"]["id"] == c.user["id"]
    err = await other.err("auth:login", {"login": name, "email": c.user["email"],
                                         "password": PASSWORD})
    assert err["code"] == "bad_request"
    assert (await other.err("auth:login", {"password": PASSWORD}))["code"] == "bad_request"
    assert (await other.err("auth:login", {"login": name, "password": "wrong one"}))[
        "code"] == "unauthorized"


async def test_limits_count_per_account_however_it_is_named(clients):
    name = f"bo_{unique_email().split('@')[0][-8:]}"
    c = await registered(clients, name)
    guesser = await clients()
    for i in range(5):  # LOGIN_MAX_FAILURES_IP=5, alternating the two names
        login = name if i % 2 else c.user["email"]
        err = await guesser.err("auth:login", {"login": login, "password": "wrong one"})
        assert err["code"] == "unauthorized"
    err = await guesser.err("auth:login", {"login": name, "password": PASSWORD})
    assert err["code"] == "rate_limited"


async def test_update_username_and_email(clients):
    c = await registered(clients)
    taken = await registered(clients, f"taken_{unique_email().split('@')[0][-8:]}")
    name = f"new_{unique_email().split('@')[0][-8:]}"
    assert (await c.ok("auth:update", {"username": name}))["username"] == name
    err = await c.err("auth:update", {"username": taken.user["username"].upper()})
    assert err["code"] == "conflict"
    email = unique_email("moved")
    err = await c.err("auth:update", {"email": email})
    assert err["code"] == "bad_request" and err["details"]["field"] == "currentPassword"
    err = await c.err("auth:update", {"email": email, "currentPassword": "not it!"})
    assert err["code"] == "forbidden" and err["details"]["reason"] == "wrong_password"
    out = await c.ok("auth:update", {"email": email, "currentPassword": PASSWORD})
    assert out["email"] == email
    await (await clients()).ok("auth:login", {"login": email, "password": PASSWORD})
    assert (await c.err("auth:update", {"username": "x"}))["code"] == "bad_request"


async def test_new_password_ends_the_other_sessions_and_keeps_this_one(clients):
    c = await registered(clients)
    email = c.user["email"]
    other = await clients()
    await other.ok("auth:login", {"login": email, "password": PASSWORD})
    await c.ok("auth:update", {"password": "a new password", "currentPassword": PASSWORD})
    assert (await other.wait_for("auth:revoked")) == {"reason": "password_changed"}
    await eventually(lambda: not other.sio.connected)
    assert (await c.ok("auth:me"))["id"] == c.user["id"]
    await c.ok("auth:refresh", {"refreshToken": c.tokens["refreshToken"]})  # still valid
    fresh = await clients()
    assert (await fresh.err("auth:login", {"login": email, "password": PASSWORD}))[
        "code"] == "unauthorized"
    await fresh.ok("auth:login", {"login": email, "password": "a new password"})


async def test_guests_set_credentials_with_upgrade_not_update(clients):
    g = await clients()
    await g.guest()
    err = await g.err("auth:update", {"password": "a new password", "currentPassword": "x"})
    assert err["code"] == "conflict"


async def test_my_files_and_conversations_across_projects(server, clients):
    me, them = await registered(clients), await registered(clients)
    mine = await me.ok("project:create", {"name": "mine"})
    theirs = await them.ok("project:create", {"name": "theirs"})
    hidden = await them.ok("project:create", {"name": "not shared"})
    await them.ok("project:member:add", {"id": theirs["id"], "email": me.user["email"],
                                         "role": "viewer"})
    files = []
    for c, p in ((me, mine), (them, theirs), (them, hidden)):
        status, body = await upload(server.url, c.tokens["accessToken"], p["id"], b"x")
        assert status == 201
        files.append(body["data"]["id"])
    listed = await me.ok("file:list", {})
    assert [f["id"] for f in listed["items"]] == files[:2]
    page = await me.ok("file:list", {"limit": 1})
    rest = await me.ok("file:list", {"cursor": page["nextCursor"]})
    assert [f["id"] for f in page["items"] + rest["items"]] == files[:2]

    convs = [await me.ok("conversation:create", {"projectId": mine["id"]}),
             await them.ok("conversation:create", {"projectId": theirs["id"]}),
             await them.ok("conversation:create", {"projectId": hidden["id"]}),
             await me.ok("conversation:create", {}),
             await them.ok("conversation:create", {})]
    everything = await me.ok("conversation:list", {"all": True})
    assert [x["id"] for x in everything["items"]] == [convs[3]["id"], convs[1]["id"],
                                                      convs[0]["id"]]
    err = await me.err("conversation:list", {"all": True, "projectId": mine["id"]})
    assert err["code"] == "bad_request"
