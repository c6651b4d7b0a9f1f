"""The admin's events on one instance (SQLite): users listed and filtered, deactivation and
role changes taking effect on live sockets, the last admin kept, deletion taking everything
the user alone owned (counted row by row), metrics and the audit log; bad input answered.
(On MongoDB: tests/integration/test_mongo_backend.py; across instances:
tests/cluster/test_admin_cluster.py.)"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from server.keys import services_of
from tests.admin_helpers import PASSWORD, make_admin, user_with_everything
from tests.client import eventually, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload


@pytest.fixture
def settings(tmp_path):
    # No ticker writes while rows are counted; offline replies without pauses.
    return make_settings(tmp_path, ticker_interval_s=3600, chat_offline_delay_ms=0)


@pytest.fixture
async def admin(server, clients):
    return await make_admin(lambda name: clients(name=name), services_of(server.app).store)


def counts(server: RunningServer) -> dict[str, int]:
    """Rows per table and stored blobs, read beside the server. Not SQLite's own bookkeeping
    (sqlite_sequence) nor FTS5's segment tables, which keep delete markers until a merge:
    the search itself is checked to find nothing of a deleted chat."""
    data = Path(server.settings.data_dir)
    conn = sqlite3.connect(f"file:{data / 'collab.sqlite3'}?mode=ro", uri=True, timeout=15)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name != 'sqlite_sequence'"
            " AND name NOT LIKE 'chat_fts_%' ORDER BY name")]
        out = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        out["site_counters"] = dict(conn.execute("SELECT name, value FROM site_counters"))
    finally:
        conn.close()
    out["<blobs>"] = sum(1 for p in (data / "files").rglob("*")
                         if p.is_file() and ".parts" not in p.parts)
    return out


async def test_list_filter_and_page_users(admin, clients):
    prefix = unique_email("zed").split("@")[0]
    made = []
    for i in range(3):
        c = await clients()
        await c.register(f"{prefix}{i}@example.com", PASSWORD)
        made.append(c.user["id"])
    await (await clients()).guest()
    page = await admin.ok("admin:users", {"q": prefix.upper(), "limit": 2})
    assert [u["id"] for u in page["items"]] == made[:2] and page["nextCursor"]
    rest = await admin.ok("admin:users", {"q": prefix, "cursor": page["nextCursor"]})
    assert [u["id"] for u in rest["items"]] == made[2:] and rest["nextCursor"] is None
    item = page["items"][0]
    assert set(item) == {"id", "email", "username", "role", "isGuest", "active", "createdAt",
                         "lastSeenAt", "projects"}
    assert item["active"] is True and item["lastSeenAt"] and item["projects"] == 0
    guests = await admin.ok("admin:users", {"guest": True})
    assert guests["items"] and all(u["isGuest"] for u in guests["items"])
    admins = await admin.ok("admin:users", {"role": "admin"})
    assert [u["id"] for u in admins["items"]] == [admin.user["id"]]


async def test_deactivation_ends_sessions_and_reactivation_lets_them_back(server, admin,
                                                                        clients):
    c = await clients()
    email = unique_email("target")
    await c.register(email, PASSWORD)
    project = await c.ok("project:create", {"name": "p"})
    token, refresh = c.tokens["accessToken"], c.tokens["refreshToken"]
    out = await admin.ok("admin:user:update", {"id": c.user["id"], "active": False})
    assert out["active"] is False
    assert (await c.wait_for("auth:revoked")) == {"reason": "deactivated"}
    await eventually(lambda: not c.sio.connected)
    again = await clients()
    err = await again.err("auth:login", {"email": email, "password": PASSWORD})
    assert err["code"] == "forbidden" and err["details"]["reason"] == "deactivated"
    assert (await again.err("auth:refresh", {"refreshToken": refresh}))["code"] == \
        "unauthorized"
    status, body = await upload(server.url, token, project["id"], b"x")
    assert status == 401 and body["error"]["code"] == "unauthorized"  # its session ended

    await admin.ok("admin:user:update", {"id": c.user["id"], "active": True})
    await again.ok("auth:login", {"email": email, "password": PASSWORD})
    kinds = [e["kind"] for e in (await admin.ok("admin:audit",
                                                {"userId": c.user["id"]}))["items"]]
    assert kinds[:2] == ["user_reactivated", "user_deactivated"]
    entry = (await admin.ok("admin:audit", {"kind": "user_deactivated"}))["items"][0]
    assert entry["actorId"] == admin.user["id"] and entry["targetId"] == c.user["id"]
    assert entry["ip"] == "127.0.0.1" and entry["at"]


async def test_role_change_applies_to_live_sockets_at_their_next_event(admin, clients):
    c = await clients()
    await c.register(unique_email(), PASSWORD)
    assert (await c.err("admin:metrics"))["code"] == "forbidden"
    await admin.ok("admin:user:update", {"id": c.user["id"], "role": "admin"})
    await eventually(lambda: c.call("admin:metrics"), timeout=5)
    assert (await c.call("admin:metrics"))["ok"]
    await c.ok("admin:user:update", {"id": admin.user["id"], "role": "user"})
    assert (await admin.err("admin:metrics"))["code"] == "forbidden"
    entries = (await c.ok("admin:audit", {"kind": "role_changed"}))["items"]
    assert [(e["targetId"], e["details"]["role"]) for e in entries] == \
        [(admin.user["id"], "user"), (c.user["id"], "admin")]


async def test_the_last_active_admin_is_kept(admin, clients):
    me = admin.user["id"]
    for payload in ({"id": me, "role": "user"}, {"id": me, "active": False}):
        err = await admin.err("admin:user:update", payload)
        assert err["code"] == "conflict" and err["details"]["reason"] == "last_admin"
    assert (await admin.err("admin:user:delete", {"id": me}))["code"] == "conflict"
    assert (await admin.ok("auth:me"))["role"] == "admin"


async def test_delete_takes_everything_the_user_alone_owned(server, admin, clients):
    host = await clients(name="host")
    await host.register(unique_email("host"), PASSWORD)
    await host.ok("project:create", {"name": "host's"})
    before = counts(server)
    made = await user_with_everything(server.url, lambda n: clients(name=n), host)
    victim = made["victim"]
    assert counts(server) != before
    out = await admin.ok("admin:user:delete", {"id": victim.user["id"]})
    assert out == {"id": victim.user["id"], "projectsDeleted": 1, "projectsTransferred": 0}
    assert (await victim.wait_for("auth:revoked")) == {"reason": "deleted"}
    after = counts(server)
    assert after.pop("audit_log") == before.pop("audit_log") + 1
    assert after == before
    shared = await host.ok("project:get", {"id": made["shared"]["id"]})
    assert [m["userId"] for m in shared["members"]] == [host.user["id"]]
    conn = sqlite3.connect(f"file:{Path(server.settings.data_dir) / 'collab.sqlite3'}?mode=ro",
                           uri=True)
    try:  # the deleted chat's words are not found by the index either
        assert conn.execute("SELECT count(*) FROM chat_fts WHERE chat_fts MATCH 'bonjour'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()


async def test_delete_transfers_projects_to_an_heir_or_a_co_owner(server, admin, clients):
    victim, heir, co = await clients(), await clients(), await clients()
    for c in (victim, heir, co):
        await c.register(unique_email(), PASSWORD)
    alone = await victim.ok("project:create", {"name": "alone"})
    both = await victim.ok("project:create", {"name": "co-owned"})
    await victim.ok("project:member:add", {"id": both["id"], "email": co.user["email"],
                                           "role": "owner"})
    err = await admin.err("admin:user:delete", {"id": victim.user["id"],
                                                "transferTo": victim.user["id"]})
    assert err["code"] == "bad_request" and err["details"]["field"] == "transferTo"
    out = await admin.ok("admin:user:delete", {"id": victim.user["id"],
                                               "transferTo": heir.user["id"]})
    assert (out["projectsDeleted"], out["projectsTransferred"]) == (0, 2)
    got = await heir.ok("project:get", {"id": alone["id"]})
    assert got["ownerId"] == heir.user["id"] and got["role"] == "owner"
    assert (await co.ok("project:get", {"id": both["id"]}))["ownerId"] == heir.user["id"]

    other, co2 = await clients(), await clients()
    for c in (other, co2):
        await c.register(unique_email(), PASSWORD)
    mine = await other.ok("project:create", {"name": "co"})
    await other.ok("project:member:add", {"id": mine["id"], "email": co2.user["email"],
                                          "role": "owner"})
    out = await admin.ok("admin:user:delete", {"id": other.user["id"]})
    assert (out["projectsDeleted"], out["projectsTransferred"]) == (0, 1)
    assert (await co2.ok("project:get", {"id": mine["id"]}))["ownerId"] == co2.user["id"]


async def test_metrics_count_what_exists_and_who_is_online(server, admin, clients):
    first = await admin.ok("admin:metrics")
    assert set(first) == {"totalUsers", "totalGuests", "totalProjects", "totalConversations",
                          "totalMessages", "totalFiles", "storageBytes", "activeUsers24h",
                          "onlineNow", "instances", "jobs"}
    email = unique_email()
    a = await clients()
    await a.register(email, PASSWORD)
    b = await clients()
    await b.ok("auth:login", {"email": email, "password": PASSWORD})  # same user, 2 sockets
    g = await clients()
    await g.guest()
    p = await a.ok("project:create", {"name": "m"})
    status, _ = await upload(server.url, a.tokens["accessToken"], p["id"], b"12345")
    assert status == 201
    now = await admin.ok("admin:metrics")
    assert now["totalUsers"] - first["totalUsers"] == 2
    assert now["totalGuests"] - first["totalGuests"] == 1
    assert now["totalProjects"] - first["totalProjects"] == 1
    assert now["totalFiles"] - first["totalFiles"] == 1
    assert now["storageBytes"] - first["storageBytes"] == 5
    assert now["activeUsers24h"] - first["activeUsers24h"] == 2
    assert now["onlineNow"] - first["onlineNow"] == 2  # a's two sockets count once
    [instance] = now["instances"]
    assert instance["id"] == server.settings.instance_id and instance["sockets"] >= 4
    assert now["jobs"] == {"running": 0, "queued": 0}


@pytest.mark.parametrize("event, payload, field", [
    ("admin:users", {"limit": 0}, "limit"),
    ("admin:users", {"role": "root"}, "role"),
    ("admin:users", {"active": "yes"}, "active"),
    ("admin:users", {"cursor": 7}, "cursor"),
    ("admin:user:update", {}, "id"),
    ("admin:user:update", {"id": "x", "role": "owner"}, "role"),
    ("admin:user:update", {"id": "x", "surprise": 1}, "surprise"),
    ("admin:user:delete", {"id": ""}, "id"),
    ("admin:user:delete", {"id": "x", "transferTo": 5}, "transferTo"),
    ("admin:audit", {"limit": 1000}, "limit"),
    ("admin:metrics", {"x": 1}, "x"),
])
async def test_bad_input_is_a_clear_error(admin, event, payload, field):
    err = await admin.err(event, payload)
    assert err["code"] == "bad_request"
    assert field in [f["field"] for f in err["details"]["fields"]]


async def test_unknown_users_are_not_found(admin):
    for event, payload in (("admin:user:update", {"id": "nobody", "active": False}),
                           ("admin:user:delete", {"id": "nobody"})):
        assert (await admin.err(event, payload))["code"] == "not_found"
