"""The per-user event budgets shared through Redis (services/ratelimit.py): each instance
decides from its own bucket while the shared one is at least half full and counts in the
background; past that, every event asks the shared bucket. A real redis-server; each
limiter stands for one instance."""
from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.clock import FakeClock
from services.ratelimit import MemoryEventLimiter, RedisEventLimiter
from tests.cluster.harness import RedisServer, free_port

RATE, BURST = 0.001, 6  # one token per 1000 s: nothing refills during a test


def limiter(client, clock) -> RedisEventLimiter:
    return RedisEventLimiter(client, MemoryEventLimiter(clock), clock)


async def counted(*limiters: RedisEventLimiter) -> None:
    """Until every background count has reached Redis."""
    for lim in limiters:
        while lim._counting:
            await asyncio.wait(set(lim._counting.values()))


async def test_the_budget_holds_across_instances_exactly_once_counts_landed():
    with RedisServer() as server:
        client = aioredis.from_url(server.url)
        clock = FakeClock()
        a, b = limiter(client, clock), limiter(client, clock)
        allowed = 0
        waits = []
        for lim in (a, b) * 6:  # a user alternating between two instances
            wait = await lim.take("u:write", RATE, BURST)
            await counted(a, b)
            allowed += wait == 0
            if wait:
                waits.append(wait)
        assert allowed == BURST
        assert waits and all(w > 100 for w in waits)  # the shared bucket's own refill time
        await client.aclose()


async def test_one_instance_decides_alone_until_half_is_spent():
    with RedisServer() as server:
        client = aioredis.from_url(server.url)
        clock = FakeClock()
        a = limiter(client, clock)
        for _ in range(BURST // 2):
            assert await a.take("u:read", RATE, BURST) == 0
            assert "u:read" in a._counting  # allowed before Redis answered
            await counted(a)
        # Half spent: from now on each event waits for the shared bucket's answer.
        assert await a.take("u:read", RATE, BURST) == 0
        assert "u:read" not in a._counting
        for _ in range(BURST - BURST // 2 - 1):
            assert await a.take("u:read", RATE, BURST) == 0
        assert await a.take("u:read", RATE, BURST) > 0  # this instance's own bucket is empty
        # The shared bucket counted all six: another instance is refused at once.
        b = limiter(client, clock)
        assert await b.take("u:read", RATE, BURST) == 0  # its first: decided alone…
        await counted(b)
        assert await b.take("u:read", RATE, BURST) > 0  # …the count's answer: spent
        await client.aclose()


async def test_redis_unreachable_leaves_each_instance_its_own_bucket():
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    clock = FakeClock()
    a = limiter(client, clock)
    results = []
    for _ in range(BURST + 1):
        results.append(await a.take("u:heavy", RATE, BURST))
        await counted(a)
    assert results[:BURST] == [0.0] * BURST and results[BURST] > 0
    await client.aclose()
