"""What the shared-state services do when Redis goes away and comes back, against a real
redis-server that is really stopped and started again (empty: it runs without persistence):
row locks are put back by their owner, bus messages wait in an outbox, presence is rewritten,
and a caller that needs Redis meanwhile gets ``unavailable``.

``tests/cluster/test_redis_outage.py`` runs the whole thing on two instances; these pin each
service's rules, one at a time, on a ``FakeClock``."""
from __future__ import annotations

import pytest

from services.bus import RedisBus
from services.clock import FakeClock
from services.leader import LocalLeader, RedisLeader
from services.locks import LockService, RedisLocks
from services.presence import RedisPresence
from services.redis_client import RedisUnavailable, open_redis
from store.errors import Locked, Unavailable
from tests.client import eventually
from tests.cluster.harness import RedisServer, free_port

EDIT, LEASE = 60.0, 3.0
ROW = {"project_id": "p1", "table_id": "t1", "row_id": "r1"}


class Pushes(list):
    async def __call__(self, project_id: str, event: str, data: dict) -> None:
        self.append((event, data))


@pytest.fixture
def redis():
    with RedisServer() as server:
        yield server


def restart(server: RedisServer) -> None:
    """Kill Redis (no graceful save: it runs without persistence anyway) and start a new,
    empty one on the same port."""
    server.process.kill()
    server.stop()
    server.start()


@pytest.fixture
async def clients(redis):
    made = []

    def make(url=None):
        client = open_redis(url or redis.url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def lock_service(client, clock, instance, pushes=None) -> LockService:
    return LockService(RedisLocks(client), clock=clock,
                       push=pushes if pushes is not None else Pushes(),
                       leader=LocalLeader("lock-reaper", instance), instance_id=instance,
                       edit_timeout=EDIT, cooldown=4.0, lease=LEASE, grace=2.0)


async def lock(service, user):
    return await service.acquire(**ROW, user_id=user, username=user, sid=f"s-{user}")


async def test_redis_down_answers_unavailable_and_keeps_the_redis_error_type(redis, clients):
    client = clients()
    redis.process.kill()
    with pytest.raises(RedisUnavailable) as caught:
        await client.get("anything")
    assert isinstance(caught.value, Unavailable)  # the event answers ``unavailable``
    assert caught.value.to_dict()["code"] == "unavailable"


async def test_an_owner_puts_its_lock_back_after_redis_forgot_it(redis, clients):
    clock = FakeClock()
    ana = lock_service(clients(), clock, "i1")
    other = lock_service(clients(), clock, "i2")
    granted = await lock(ana, "ana")
    restart(redis)
    assert await other.holder("t1", "r1") is None  # Redis forgot it ...
    await clock.advance(1.0)
    await ana.renew()
    back = await other.holder("t1", "r1")  # ... its owner put it back, token and all
    assert back["token"] == granted["token"] and back["userId"] == "ana"
    assert back["leaseUntil"] == clock.time() + LEASE
    with pytest.raises(Locked):
        await lock(other, "bob")
    await ana.check_write("t1", "r1", "ana", granted["token"])  # the token still fences


async def test_a_lock_that_ended_is_not_put_back(redis, clients):
    clock = FakeClock()
    ana = lock_service(clients(), clock, "i1")
    owner = lock_service(clients(), clock, "i2")
    await lock(ana, "ana")
    await owner.force_release("t1", "r1", "owner_override")  # on another instance
    await ana.renew()
    assert await owner.holder("t1", "r1") is None and not ana.owned


async def test_a_row_locked_by_someone_else_after_the_restart_stays_theirs(redis, clients):
    clock = FakeClock()
    ana = lock_service(clients(), clock, "i1")
    bob = lock_service(clients(), clock, "i2")
    await lock(ana, "ana")
    restart(redis)
    await lock(bob, "bob")  # before Ana's instance renewed
    await ana.renew()
    assert (await bob.holder("t1", "r1"))["userId"] == "bob" and not ana.owned


async def test_a_forgotten_lock_past_its_deadline_ends_as_a_timeout(redis, clients):
    clock = FakeClock()
    pushes = Pushes()
    ana = lock_service(clients(), clock, "i1", pushes)
    await lock(ana, "ana")
    restart(redis)
    await clock.advance(EDIT + 1)
    await ana.renew()
    assert await ana.holder("t1", "r1") is None and not ana.owned
    assert pushes[-1] == ("row:unlocked", {"tableId": "t1", "rowId": "r1", "reason": "timeout",
                                           "userId": "ana"})


async def test_nobody_leads_while_redis_is_down(redis, clients):
    leader = RedisLeader(clients(), "chore", "i1", ttl=2.0)
    assert await leader.hold()
    redis.process.kill()
    assert not await leader.hold()
    redis.stop()
    redis.start()
    assert await leader.hold()


async def test_bus_messages_sent_during_an_outage_arrive_after_it_in_order(redis, clients):
    a, b = RedisBus(clients()), RedisBus(clients())
    heard_a, heard_b = [], []

    async def on_a(data):
        heard_a.append(data["n"])

    async def on_b(data):
        heard_b.append(data["n"])

    a.on("x", on_a)
    b.on("x", on_b)
    await a.start()
    await b.start()
    try:
        await a.publish("x", {"n": 0})
        await eventually(lambda: heard_b == [0])
        redis.process.kill()
        await a.publish("x", {"n": 1})  # no error: it waits in the outbox
        await a.publish("x", {"n": 2})
        assert heard_a == [0, 1, 2]  # this instance hears its own at once
        await eventually(lambda: not b.listening)
        redis.stop()
        redis.start()
        await eventually(lambda: heard_b == [0, 1, 2])
        await a.publish("x", {"n": 3})
        await eventually(lambda: heard_b == [0, 1, 2, 3])
        assert heard_a == [0, 1, 2, 3]  # its own messages, read back, are not heard twice
    finally:
        await a.close()
        await b.close()


async def test_presence_is_rewritten_after_redis_forgot_it(redis, clients):
    clock = FakeClock()
    here = RedisPresence(clients(), "i1", ttl=30, clock=clock)
    there = RedisPresence(clients(), "i2", ttl=30, clock=clock)
    ana = {"userId": "u1", "username": "ana", "isGuest": False}
    await here.join("p1", "s1", ana)
    restart(redis)
    assert await there.users("p1") == []
    assert await here.beat() == {"p1"}
    assert await there.users("p1") == [ana]


async def test_presence_of_sockets_that_left_while_redis_was_unreachable(redis, clients):
    """Redis kept its data but this instance could not reach it (a partition): the
    leaving never fails, and the next beat that reaches Redis removes the entries."""
    clock = FakeClock()
    reachable = clients()
    here = RedisPresence(reachable, "i1", ttl=30, clock=clock)
    ana = {"userId": "u1", "username": "ana", "isGuest": False}
    bob = {"userId": "u2", "username": "bob", "isGuest": False}
    await here.join("p1", "s1", ana)
    await here.join("p1", "s2", bob)
    here.redis = clients(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert await here.drop_socket("s1") == set()  # nothing changed yet that others see
    await here.leave("p1", "s2")
    with pytest.raises(Unavailable):
        await here.beat()
    with pytest.raises(Unavailable):
        await here.join("p2", "s3", ana)
    here.redis = reachable
    assert await here.beat() == {"p1", "p2"}
    assert await here.users("p1") == [] and await here.users("p2") == [ana]
