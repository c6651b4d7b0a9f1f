"""Per-user event budgets and connection caps (issue 12): each event class has its own
bucket per user (embedded: in process; with Redis: shared by every instance), answering
rate_limited with retryAfterMs; sockets are capped per address and per user."""
from __future__ import annotations

from services.clock import FakeClock
from tests.client import Client, unique_email
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings
from tests.integration.test_signin_limits import refusal

LOW = {"event_rate_read": 2, "event_rate_write": 1, "event_rate_heavy": 1}


async def test_each_class_has_its_own_budget_refilled_by_time(tmp_path):
    clock = FakeClock()
    srv = await RunningServer(make_settings(tmp_path, **LOW), clock=clock).start()
    c = await Client(srv.url).connect()
    try:
        await c.register(unique_email())
        for _ in range(10):  # read: 2/s, a burst of 10
            await c.ok("auth:me")
        err = await c.err("auth:me")
        assert err["code"] == "rate_limited" and err["details"]["class"] == "read"
        assert 0 < err["details"]["retryAfterMs"] <= 500
        await c.ok("ping")  # exempt: always answers
        project = await c.ok("project:create", {"name": "writes have their own budget"})
        for _ in range(10):  # heavy: a burst of 10
            await c.ok("chat:search", {"projectId": project["id"], "query": "x"})
        assert (await c.err("chat:search", {"projectId": project["id"], "query": "x"}))[
            "details"]["class"] == "heavy"
        await clock.advance(1.0)
        await c.ok("auth:me")
        await c.ok("auth:me")
        assert (await c.err("auth:me"))["code"] == "rate_limited"
    finally:
        await c.close()
        await srv.stop()


async def test_the_budget_is_shared_by_instances_through_redis(tmp_path):
    redis = RedisServer().start()
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(await RunningServer(make_settings(  # one data dir: one store
                tmp_path, redis_url=redis.url, instance_id=name, event_rate_read=1)).start())
        a = await Client(servers[0].url).connect()
        reg = await a.register(unique_email())
        b = await Client(servers[1].url).connect(reg["tokens"]["accessToken"])
        for c in (a, b, a, b, a):  # a burst of 5, spent across both
            await c.ok("auth:me")
        for c in (a, b):
            err = await c.err("auth:me")
            assert err["code"] == "rate_limited" and err["details"]["retryAfterMs"] > 0
        await a.close()
        await b.close()
    finally:
        for srv in servers:
            await srv.stop()
        redis.stop()


async def test_sockets_are_capped_per_user_and_per_address(tmp_path):
    srv = await RunningServer(make_settings(tmp_path, max_sockets_per_user=2,
                                            max_sockets_per_ip=4)).start()
    made: list[Client] = []
    try:
        first = await Client(srv.url).connect()
        made.append(first)
        token = (await first.register(unique_email()))["tokens"]["accessToken"]
        made.append(await Client(srv.url).connect(token))  # the user's second socket
        refused = await refusal(srv, "127.0.0.1", token=token)
        assert refused["code"] == "rate_limited" and "this user" in refused["message"]
        made.append(await Client(srv.url).connect())
        made.append(await Client(srv.url).connect())  # four from 127.0.0.1
        refused = await refusal(srv, "127.0.0.1")
        assert refused["code"] == "rate_limited" and "address" in refused["message"]
        await made.pop().close()
        made.append(await Client(srv.url).connect())  # a place freed
    finally:
        for c in made:
            await c.close()
        await srv.stop()
