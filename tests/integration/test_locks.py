"""Row locks on one instance (in-process backend): grant, fencing, timeout and cooldown,
disconnect grace and reclaim, owner override, deleted rows."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.client import Client, unique_email
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings

FAST = {"lock_edit_timeout_s": 1.0, "lock_cooldown_s": 1.5, "lock_grace_s": 0.6,
        "lock_lease_s": 3.0}


@pytest.fixture(scope="module")
def redis_url():
    with RedisServer() as redis:
        yield redis.url


@pytest.fixture(params=["memory", "redis"])
def lock_backend(request, redis_url):
    """Every lock test runs on the in-process backend and on Redis (the Lua scripts)."""
    return {} if request.param == "memory" else {"redis_url": redis_url}


async def started(tmp_path, **overrides):
    return await RunningServer(make_settings(tmp_path, **overrides)).start()


@pytest.fixture
async def server(tmp_path, lock_backend):
    srv = await started(tmp_path, **lock_backend)
    yield srv
    await srv.stop()


@pytest.fixture
async def fast(tmp_path, lock_backend):
    srv = await started(tmp_path, **FAST, **lock_backend)
    yield srv
    await srv.stop()


@pytest.fixture
async def graceful(tmp_path, lock_backend):
    """Short disconnect grace, long edit timeout."""
    srv = await started(tmp_path, **{**FAST, "lock_edit_timeout_s": 60}, **lock_backend)
    yield srv
    await srv.stop()


async def setup_table(url):
    owner = await Client(url, "owner").connect()
    await owner.register(unique_email("owner"))
    ana = await Client(url, "ana").connect()
    await ana.register(unique_email("ana"), username="ana_1")
    bob = await Client(url, "bob").connect()
    await bob.register(unique_email("bob"), username="bob_1")
    p = await owner.ok("project:create", {"name": "Locks"})
    for c in (ana, bob):
        await owner.ok("project:member:add", {"id": p["id"], "email": c.user["email"],
                                              "role": "editor"})
    for c in (owner, ana, bob):
        await c.ok("project:join", {"id": p["id"]})
    t = await owner.ok("table:create", {"projectId": p["id"], "name": "t",
                                        "columns": [{"name": "v", "type": "number"}]})
    row = await owner.ok("row:add", {"tableId": t["id"], "values": {"v": 1}})
    return owner, ana, bob, t["id"], row["id"]


async def close(*cs):
    for c in cs:
        await c.close()


async def test_one_holder_others_locked_with_name_and_fencing(server):
    owner, ana, bob, tid, rid = await setup_table(server.url)
    try:
        lock = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        assert lock["lockToken"] and lock["expiresAt"]
        locked = await bob.wait_for("row:locked")
        assert locked["userId"] == ana.user["id"] and locked["username"] == "ana_1"
        err = await bob.err("row:lock", {"tableId": tid, "rowId": rid})
        assert err["code"] == "locked" and "ana_1" in err["message"]
        # Bob cannot write around the lock, with or without a token.
        assert (await bob.err("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                             "values": {"v": 2}}))["code"] == "locked"
        assert (await bob.err("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                             "lockToken": "forged-token-123",
                                             "values": {"v": 2}}))["code"] == "conflict"
        assert (await bob.err("row:delete", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        row = await ana.ok("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                          "lockToken": lock["lockToken"], "values": {"v": 2}})
        assert row["version"] == 2
        await ana.ok("row:unlock", {"tableId": tid, "rowId": rid})
        unlocked = await bob.wait_for("row:unlocked")
        assert unlocked["reason"] == "released"
        # The old token no longer writes, even with the current version.
        err = await ana.err("row:update", {"tableId": tid, "rowId": rid, "version": 2,
                                           "lockToken": lock["lockToken"], "values": {"v": 3}})
        assert err["code"] == "conflict" and err["details"]["reason"] == "stale_lock"
        assert (await bob.ok("row:lock", {"tableId": tid, "rowId": rid}))["lockToken"]
    finally:
        await close(owner, ana, bob)


async def test_timeout_broadcast_then_cooldown(fast):
    owner, ana, bob, tid, rid = await setup_table(fast.url)
    try:
        lock = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        # A heartbeat moves the deadline: still held after the first timeout would have hit.
        await asyncio.sleep(0.6)
        await ana.ok("row:heartbeat", {"tableId": tid, "rowId": rid,
                                       "lockToken": lock["lockToken"]})
        await asyncio.sleep(0.6)
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        gone = await bob.wait_for("row:unlocked", timeout=5)
        assert gone["reason"] == "timeout" and gone["userId"] == ana.user["id"]
        err = await ana.err("row:lock", {"tableId": tid, "rowId": rid})
        assert err["code"] == "rate_limited" and 0 < err["details"]["retryAfter"] <= 1.5
        assert (await ana.err("row:heartbeat", {"tableId": tid, "rowId": rid,
                                                "lockToken": lock["lockToken"]}))["code"] == \
            "conflict"
        # Others are not in cooldown; Ana is again after it passes.
        other = await bob.ok("row:lock", {"tableId": tid, "rowId": rid})
        await bob.ok("row:unlock", {"tableId": tid, "rowId": rid})
        await asyncio.sleep(1.6)
        assert (await ana.ok("row:lock", {"tableId": tid, "rowId": rid}))["lockToken"] != \
            other["lockToken"]
    finally:
        await close(owner, ana, bob)


async def test_disconnect_releases_after_grace_unless_reclaimed(graceful):
    fast = graceful
    owner, ana, bob, tid, rid = await setup_table(fast.url)
    try:
        first = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        token = ana.tokens["accessToken"]
        await ana.close()
        # Reconnect within the grace and reclaim: same token, no unlock broadcast.
        ana2 = await Client(fast.url, "ana2").connect(token)
        again = await ana2.ok("row:lock", {"tableId": tid, "rowId": rid})
        assert again["lockToken"] == first["lockToken"]
        await asyncio.sleep(1.0)
        assert [u for u in bob.pushes["row:unlocked"]] == []
        # Now go for good: released with reason "disconnect" after the grace.
        started = time.monotonic()
        await ana2.close()
        gone = await bob.wait_for("row:unlocked", timeout=5)
        assert gone["reason"] == "disconnect" and time.monotonic() - started >= 0.5
        assert (await bob.ok("row:lock", {"tableId": tid, "rowId": rid}))["lockToken"]
    finally:
        await close(owner, ana, bob)


async def test_owner_override_and_cooldown_for_the_broken_holder(fast):
    owner, ana, bob, tid, rid = await setup_table(fast.url)
    try:
        await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        assert (await bob.err("row:unlock", {"tableId": tid, "rowId": rid, "force": True}))[
            "code"] == "forbidden"
        assert (await bob.err("row:unlock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        out = await owner.ok("row:unlock", {"tableId": tid, "rowId": rid, "force": True})
        assert out == {"released": True}
        assert (await ana.wait_for("row:unlocked"))["reason"] == "owner_override"
        assert (await ana.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == \
            "rate_limited"
    finally:
        await close(owner, ana, bob)


async def test_deleting_a_locked_row_and_locking_a_deleted_row(server):
    owner, ana, bob, tid, rid = await setup_table(server.url)
    try:
        lock = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        await ana.ok("row:delete", {"tableId": tid, "rowId": rid, "lockToken": lock["lockToken"]})
        assert (await bob.wait_for("row:unlocked"))["reason"] == "deleted"
        assert (await bob.wait_for("row:deleted"))["rowId"] == rid
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "not_found"
        assert (await bob.err("row:lock", {"tableId": "nope", "rowId": rid}))["code"] == \
            "not_found"
    finally:
        await close(owner, ana, bob)


async def test_get_shows_current_locks(server):
    owner, ana, bob, tid, rid = await setup_table(server.url)
    try:
        assert (await bob.ok("row:get", {"tableId": tid, "rowId": rid}))["lock"] is None
        await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        one = await bob.ok("row:get", {"tableId": tid, "rowId": rid})
        assert one["row"]["values"] == {"v": 1} and one["lock"]["username"] == "ana_1"
        got = await bob.ok("table:get", {"tableId": tid})
        assert [(l["rowId"], l["username"]) for l in got["locks"]] == [(rid, "ana_1")]
        assert got["rowCount"] == 1
    finally:
        await close(owner, ana, bob)
