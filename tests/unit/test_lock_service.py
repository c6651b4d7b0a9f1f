"""LockService on the in-process backend, driven only by a FakeClock: the edit timeout, the
cooldown, the disconnect grace, lease renewal and the reaper, each to the fake second.

The fake clock starts far from the real time (FakeClock's default start), so a service
that read the system clock anywhere would grant, expire or refuse at the wrong moment."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.clock import FakeClock
from services.leader import LocalLeader
from services.locks import LockService, MemoryLocks
from store.errors import Conflict, Locked, RateLimited
from store.ids import iso

EDIT, COOLDOWN, LEASE, GRACE = 10.0, 4.0, 3.0, 2.0  # reaper every 0.5 s, renewal every 1 s
# Each test starts OFFSET after the service's loops, so no deadline falls on a reaper pass.
OFFSET = 0.25
ROW = {"project_id": "p1", "table_id": "t1", "row_id": "r1"}


class Pushes(list):
    async def __call__(self, project_id: str, event: str, data: dict) -> None:
        self.append((event, data))

    def unlocked(self) -> list[str]:
        return [d["reason"] for e, d in self if e == "row:unlocked"]


async def make_service(clock: FakeClock, backend=None, pushes=None, instance="i1"):
    service = LockService(backend or MemoryLocks(), clock=clock, push=pushes or Pushes(),
                          leader=LocalLeader("lock-reaper", instance), instance_id=instance,
                          edit_timeout=EDIT, cooldown=COOLDOWN, lease=LEASE, grace=GRACE)
    await service.start()
    await asyncio.sleep(0)  # its loops park on the clock
    return service


async def offset(clock):
    await clock.advance(OFFSET)


async def lock(service, user="ana", sid="s-ana"):
    return await service.acquire(**ROW, user_id=user, username=user, sid=sid)


@pytest.fixture
async def clock():
    return FakeClock()


async def test_edit_timeout_then_cooldown_for_the_holder_only(clock):
    service = await make_service(clock)
    pushes = service.push
    await offset(clock)
    try:
        start = clock.time()
        info = await lock(service)
        assert info["deadline"] == start + EDIT and info["leaseUntil"] == start + LEASE
        assert pushes[-1][1]["expiresAt"] == iso(datetime.fromtimestamp(start + EDIT,
                                                                         UTC))
        # Held past the first lease (renewed every second) until the edit deadline.
        await clock.advance(EDIT - 0.01)
        assert (await service.holder("t1", "r1"))["token"] == info["token"]
        with pytest.raises(Locked):
            await lock(service, "bob", "s-bob")
        assert pushes.unlocked() == []
        await clock.advance(0.5)  # the reaper's first pass after the deadline: EDIT + 0.25
        assert pushes.unlocked() == ["timeout"]
        assert await service.holder("t1", "r1") is None
        with pytest.raises(Conflict):
            await service.heartbeat("t1", "r1", info["token"])
        # The timed-out holder waits COOLDOWN from the reap; others do not.
        with pytest.raises(RateLimited) as refused:
            await lock(service)
        left = refused.value.details["retryAfter"]
        assert left == pytest.approx(COOLDOWN - 0.24, abs=0.01)
        bob = await lock(service, "bob", "s-bob")
        await service.release_by("t1", "r1", "bob")
        await clock.advance(left - 0.05)
        with pytest.raises(RateLimited):
            await lock(service)
        await clock.advance(0.1)
        assert (await lock(service))["token"] != bob["token"]
    finally:
        await service.stop()


async def test_activity_moves_the_deadline(clock):
    service = await make_service(clock)
    await offset(clock)
    try:
        info = await lock(service)
        await clock.advance(EDIT - 1)
        await service.heartbeat("t1", "r1", info["token"])
        await clock.advance(EDIT - 1)  # past the first deadline, before the moved one
        assert await service.holder("t1", "r1") is not None
        assert service.push.unlocked() == []
        await clock.advance(1.5)
        assert service.push.unlocked() == ["timeout"]
    finally:
        await service.stop()


async def test_disconnect_grace_releases_unless_reclaimed(clock):
    service = await make_service(clock)
    try:
        first = await lock(service)
        await service.socket_gone("s-ana")
        await clock.advance(GRACE - 0.1)
        again = await lock(service, sid="s-ana-2")  # reconnected: reclaims, same token
        assert again["token"] == first["token"]
        await clock.advance(GRACE)  # the old socket's grace would have ended
        assert service.push.unlocked() == []
        assert (await service.holder("t1", "r1"))["sid"] == "s-ana-2"
        await service.socket_gone("s-ana-2")
        await clock.advance(GRACE - 0.01)
        assert service.push.unlocked() == [] and await service.holder("t1", "r1")
        await clock.advance(0.02)
        assert service.push.unlocked() == ["disconnect"]
        assert await service.holder("t1", "r1") is None
        assert await lock(service)  # no cooldown after a disconnect
    finally:
        await service.stop()


async def test_a_dead_instances_lock_lapses_with_its_lease_and_the_reaper_frees_it(clock):
    """Instance 1 stops renewing (it died): within a lease and a reaper pass, another
    instance's reaper frees the row and says why."""
    backend = MemoryLocks()
    dead = await make_service(clock, backend)
    watcher = await make_service(clock, backend, instance="i2")
    await offset(clock)
    try:
        info = await lock(dead)
        for task in dead._tasks:  # killed: no renewal, no grace timers
            task.cancel()
        await asyncio.gather(*dead._tasks, return_exceptions=True)
        await clock.advance(LEASE - 0.01)
        assert (await watcher.holder("t1", "r1"))["token"] == info["token"]
        assert watcher.push.unlocked() == []
        await clock.advance(0.5)
        assert watcher.push.unlocked() == ["disconnect"]
        assert await watcher.holder("t1", "r1") is None
    finally:
        await watcher.stop()
        await dead.stop()


async def test_a_live_instance_keeps_renewing_the_lease(clock):
    service = await make_service(clock)
    try:
        info = await lock(service)
        await clock.advance(LEASE * 3)  # many leases; still inside the edit timeout
        held = await service.holder("t1", "r1")
        assert held["token"] == info["token"]
        assert held["leaseUntil"] > clock.time() and held["leaseUntil"] <= clock.time() + LEASE
        assert service.push.unlocked() == []
    finally:
        await service.stop()
