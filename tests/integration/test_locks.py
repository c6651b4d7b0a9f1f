"""Row locks on one instance (in-process backend): grant, fencing, timeout and cooldown,
disconnect grace and reclaim, owner override, deleted rows.

The timing tests run the server on a ``FakeClock`` and move it with ``advance``: deadlines,
cooldowns and the disconnect grace are checked to the fake second, and "no push came" is
checked against a later ack on the same socket, never after a pause."""
from __future__ import annotations

import time

import pytest

from server.keys import services_of
from services.clock import FakeClock
from tests.client import Client, eventually, unique_email
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


async def started(tmp_path, clock=None, **overrides):
    return await RunningServer(make_settings(tmp_path, **overrides), clock=clock).start()


def fake_clock() -> FakeClock:
    # Starts at the real time: the socket layer still checks token expiry on the system clock.
    return FakeClock(start=time.time())


@pytest.fixture
async def server(tmp_path, lock_backend):
    srv = await started(tmp_path, **lock_backend)
    yield srv
    await srv.stop()


@pytest.fixture
async def fast(tmp_path, lock_backend):
    """FAST timings on a fake clock (``fast.clock``)."""
    srv = await started(tmp_path, fake_clock(), **FAST, **lock_backend)
    yield srv
    await srv.stop()


@pytest.fixture
async def graceful(tmp_path, lock_backend):
    """Short disconnect grace, long edit timeout, on a fake clock."""
    srv = await started(tmp_path, fake_clock(), **{**FAST, "lock_edit_timeout_s": 60},
                        **lock_backend)
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
    clock = fast.clock  # the reaper runs every 0.5 s (LOCK_LEASE_S / 6), from t=0
    owner, ana, bob, tid, rid = await setup_table(fast.url)
    try:
        lock = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})  # t=0, deadline 1.0
        # A heartbeat moves the deadline: still held after the first timeout would have hit.
        await clock.advance(0.6)
        await ana.ok("row:heartbeat", {"tableId": tid, "rowId": rid,
                                       "lockToken": lock["lockToken"]})  # deadline 1.6
        await clock.advance(0.95)  # t=1.55: the reaper has run at 0.5, 1.0 and 1.5
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        # That ack came after anything the reaper pushed to Bob: nothing was.
        assert bob.pushes["row:unlocked"] == []
        await clock.advance(0.5)  # t=2.05: the reaper's pass at 2.0 finds the lapsed lock
        gone = await bob.wait_for("row:unlocked", timeout=5)
        assert gone["reason"] == "timeout" and gone["userId"] == ana.user["id"]
        # Ana's cooldown (1.5 s) started at the reap (t=2.0): 1.45 s left.
        err = await ana.err("row:lock", {"tableId": tid, "rowId": rid})
        assert err["code"] == "rate_limited"
        assert err["details"]["retryAfter"] == pytest.approx(1.45, abs=0.011)
        assert (await ana.err("row:heartbeat", {"tableId": tid, "rowId": rid,
                                                "lockToken": lock["lockToken"]}))["code"] == \
            "conflict"
        # Others are not in cooldown; Ana is again once it passes, not before.
        other = await bob.ok("row:lock", {"tableId": tid, "rowId": rid})
        await bob.ok("row:unlock", {"tableId": tid, "rowId": rid})
        await clock.advance(1.4)  # t=3.45
        assert (await ana.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == \
            "rate_limited"
        await clock.advance(0.1)  # t=3.55
        assert (await ana.ok("row:lock", {"tableId": tid, "rowId": rid}))["lockToken"] != \
            other["lockToken"]
    finally:
        await close(owner, ana, bob)


async def grace_started(srv, key) -> None:
    """Until the server has handled a holder's disconnect: its lock's grace timer runs."""
    locks = services_of(srv.app).locks
    await eventually(lambda: (owned := locks.owned.get(key)) is not None and
                     owned.grace is not None, interval=0.01)


async def test_disconnect_releases_after_grace_unless_reclaimed(graceful):
    fast, clock = graceful, graceful.clock  # LOCK_GRACE_S=0.6, LOCK_LEASE_S=3
    owner, ana, bob, tid, rid = await setup_table(fast.url)
    try:
        first = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        token = ana.tokens["accessToken"]
        await ana.close()
        await grace_started(fast, (tid, rid))
        # Reconnect within the grace and reclaim: same token, no unlock broadcast.
        ana2 = await Client(fast.url, "ana2").connect(token)
        again = await ana2.ok("row:lock", {"tableId": tid, "rowId": rid})
        assert again["lockToken"] == first["lockToken"]
        await clock.advance(3.5)  # past the old socket's grace and the first lease, renewed
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        assert bob.pushes["row:unlocked"] == []  # (it would have come before that ack)
        # Now go for good: released with reason "disconnect" when the grace ends, not before.
        await ana2.close()
        await grace_started(fast, (tid, rid))
        await clock.advance(0.55)
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        assert bob.pushes["row:unlocked"] == []
        await clock.advance(0.1)
        gone = await bob.wait_for("row:unlocked", timeout=5)
        assert gone["reason"] == "disconnect" and gone["userId"] == ana.user["id"]
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
        assert [(x["rowId"], x["username"]) for x in got["locks"]] == [(rid, "ana_1")]
        assert got["rowCount"] == 1
    finally:
        await close(owner, ana, bob)
