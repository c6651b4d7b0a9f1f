"""Pushes are numbered when made and delivered in that order (services/replay.py), through the
pipelined Redis connection (services/redis_pipe.py: commands go out in the order they were
called, answers come back to their own callers, a failed connection fails what waited on it
and the next call connects again) or in process. A real redis-server."""
from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.clock import FakeClock, SystemClock
from services.redis_pipe import PipelinedRedis
from services.replay import Delivery
from tests.cluster.harness import RedisServer


@pytest.fixture
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
async def client(redis_server):
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def pipe(client):
    pipe = PipelinedRedis(client)
    yield pipe
    await pipe.aclose()


async def test_answers_come_back_in_the_order_the_calls_were_made(client, pipe):
    futures = [pipe.call("INCR", "n") for _ in range(500)]  # none awaited in between
    assert await asyncio.gather(*futures) == list(range(1, 501))
    # A command's own error is its caller's; the ones around it are answered.
    await client.set("text", "abc")
    ok1, bad, ok2 = pipe.call("INCR", "n"), pipe.call("INCR", "text"), pipe.call("INCR", "n")
    assert await ok1 == 501
    with pytest.raises(ResponseError):
        await bad
    assert await ok2 == 502


async def test_a_command_goes_out_without_waiting_for_the_answer_before_it(client, pipe):
    blocked = pipe.call("BLPOP", "gate", 10)
    behind = pipe.call("RPUSH", "after", "x")
    # Redis already holds the second command while the first is still blocked: it sits in
    # the connection's query buffer (a client waiting for answers one at a time would not
    # have written it yet).
    for _ in range(500):
        pending = [c for c in await client.client_list() if c.get("cmd") == "blpop"]
        if pending and int(pending[0]["qbuf"]) > 0:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the second command was not written while the first waited")
    assert not behind.done()
    await client.rpush("gate", "go")
    assert await blocked == [b"gate", b"go"]
    assert await behind == 1


async def test_a_lost_connection_fails_what_waited_and_the_next_call_reconnects():
    with RedisServer() as server:
        client = aioredis.from_url(server.url, socket_timeout=0.5)
        other = aioredis.from_url(server.url)
        pipe = PipelinedRedis(client)
        try:
            assert await pipe.call("PING") == b"PONG"
            # No answer within the client's socket timeout: a redis-py timeout error.
            await other.execute_command("CLIENT", "PAUSE", 2000, "ALL")
            with pytest.raises(RedisTimeoutError):
                await pipe.call("PING")
            await other.execute_command("CLIENT", "UNPAUSE")
            assert await pipe.call("INCR", "n") == 1
            server.stop()
            with pytest.raises(RedisError):  # refused: a redis-py error, as from the client
                await pipe.call("INCR", "n")
            server.start()
            assert await pipe.call("INCR", "n") == 1  # a new server, a new connection
        finally:
            await pipe.aclose()
            await client.aclose()
            await other.aclose()


class Sockets:
    """What Delivery emits to this instance's sockets, in order."""

    def __init__(self):
        self.emitted: list[tuple[str, dict]] = []

    async def emit(self, event, data, to=None, **_):
        self.emitted.append((event, data))


async def test_pushes_are_numbered_when_made_and_delivered_in_that_order(client):
    sockets = Sockets()
    delivery = Delivery(sockets, SystemClock(), max_events=100, window_s=60,  # type: ignore[arg-type]
                        redis=client, channel="ch", host_id="h")
    first = delivery.push("message:started", {"n": 1}, to="conversation:c")
    second = delivery.push("message:delta", {"n": 2}, to="conversation:c")
    await second  # awaited first, yet numbered second and delivered second
    await first
    await delivery.aclose()
    assert [(e, d["n"], d["seq"]) for e, d in sockets.emitted] == \
        [("message:started", 1, 1), ("message:delta", 2, 2)]
    backlog = await delivery.since("conversation:c", 0, sockets.emitted[0][1]["epoch"])
    assert [e.event for e in backlog.entries] == ["message:started", "message:delta"]


async def test_while_redis_is_down_pushes_are_numbered_here_and_still_delivered():
    with RedisServer() as server:
        client = aioredis.from_url(server.url, socket_timeout=0.5)
        sockets = Sockets()
        delivery = Delivery(sockets, SystemClock(), max_events=100, window_s=60,  # type: ignore[arg-type]
                            redis=client, channel="ch", host_id="h")
        try:
            server.stop()
            await delivery.push("row:added", {"n": 1}, to="project:p")
            await delivery.push("row:added", {"n": 2}, to="project:p")
            assert [(d["n"], d["seq"], d["epoch"]) for _, d in sockets.emitted] == \
                [(1, 1, delivery.memory.epoch), (2, 2, delivery.memory.epoch)]
        finally:
            await delivery.aclose()
            await client.aclose()


async def test_embedded_a_push_awaited_before_the_one_numbered_ahead_of_it_waits_for_it():
    sockets = Sockets()
    delivery = Delivery(sockets, FakeClock(), max_events=100, window_s=60)  # type: ignore[arg-type]
    started = delivery.push("message:started", {"n": 1}, to="conversation:c")
    delta = asyncio.ensure_future(delivery.push("message:delta", {"n": 2}, to="conversation:c"))
    await asyncio.sleep(0)
    assert sockets.emitted == []  # held: push 1 was numbered lately and has not come yet
    await started
    await delta
    assert [(e, d["seq"]) for e, d in sockets.emitted] == \
        [("message:started", 1), ("message:delta", 2)]
