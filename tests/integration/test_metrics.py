"""/metrics of a real instance after real traffic: store operations by repository.method,
sockets and rooms read at scrape time, job queues, a chat reply's time to its first delta,
and (two instances behind a real redis-server) the bus's publish→receive lag."""
from __future__ import annotations

import pytest

from bench.pcap_synth import write_capture
from server.keys import services_of
from server.metrics import JOB_COUNTS_TTL_S
from services.bus import RedisBus
from services.bus_probe import KIND, BusProbe
from services.clock import FakeClock
from tests.chat_helpers import close, finished, team
from tests.client import Client, eventually, unique_email
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload
from tests.metrics_helpers import scrape, value


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, chat_offline_delay_ms=0, ingest_concurrency=1)


async def test_store_operations_are_timed_by_repository_and_method(server, clients):
    email = unique_email("metrics")
    before = await scrape(server.url)
    c = await clients()
    await c.register(email, username="metered")
    await c.ok("auth:login", {"email": email, "password": "correct horse"})
    await c.ok("auth:login", {"email": "metered", "password": "correct horse"})
    taken = await (await clients()).err("auth:register", {"email": unique_email("again"),
                                                          "password": "correct horse",
                                                          "username": "metered"})
    assert taken["code"] == "conflict"
    after = await scrape(server.url)

    op = {"op": "users.get_user_by_login"}
    assert value(after, "collab_store_seconds_count", **op) \
        - value(before, "collab_store_seconds_count", **op) == 2
    assert value(after, "collab_store_seconds_sum", **op) > 0
    # Every bucket counts the calls at most that slow: the +Inf one has them all.
    assert value(after, "collab_store_seconds_bucket", le="+Inf", **op) == \
        value(after, "collab_store_seconds_count", **op)
    assert value(after, "collab_store_seconds_count", op="users.create_user") >= 2
    assert value(after, "collab_store_errors_total", op="users.create_user",
                 error="conflict") == 1
    assert value(after, "collab_store_errors_total", op="users.get_user_by_login",
                 error="conflict") == 0


async def test_sockets_and_rooms_are_counted_when_scraped(server, clients):
    owner, editor, anonymous = await clients(name="owner"), await clients(name="editor"), \
        await clients(name="anonymous")
    await owner.register(unique_email("owner"))
    await editor.register(unique_email("editor"))
    p = await owner.ok("project:create", {"name": "Rooms"})
    await owner.ok("project:member:add", {"id": p["id"], "email": editor.user["email"],
                                          "role": "editor"})
    for c in (owner, editor):
        await c.ok("project:join", {"id": p["id"]})

    samples = await scrape(server.url)
    assert value(samples, "collab_namespace_sockets", namespace="/") == 3
    rooms = {kind: value(samples, "collab_rooms", namespace="/", kind=kind)
             for kind in ("user", "project", "project:owners", "project:others")}
    assert rooms == {"user": 2, "project": 1, "project:owners": 1, "project:others": 1}
    assert anonymous.sio.connected

    await editor.close()

    async def editor_gone():
        s = await scrape(server.url)
        return value(s, "collab_namespace_sockets", namespace="/") == 2 and s
    samples = await eventually(editor_gone)
    assert value(samples, "collab_rooms", namespace="/", kind="user") == 1
    assert value(samples, "collab_rooms", namespace="/", kind="project:others") == 0


async def test_chat_time_to_first_delta_is_observed_per_reply(server):
    p, owner, _ = await team(server.url)
    try:
        before = await scrape(server.url)
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        await owner.ok("conversation:join", {"id": conv["id"]})
        for question in ("What can you do?", "And what else?"):
            ack = await owner.ok("message:send", {"conversationId": conv["id"],
                                                  "content": question})
            event, done = await finished(owner, ack["replyId"])
            assert event == "message:done"
        after = await scrape(server.url)
    finally:
        await close(owner)
    name = "collab_chat_first_delta_seconds"
    assert value(after, f"{name}_count") - value(before, f"{name}_count") == 2
    assert value(after, f"{name}_sum") > value(before, f"{name}_sum")
    # The reply's own figure is the same interval up to the push, so no longer than it.
    first_ms = done["message"]["metadata"]["firstDeltaMs"]
    assert first_ms <= done["message"]["metadata"]["durationMs"]


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "big.pcap", 40_000).read_bytes()


async def test_job_queues_everywhere_and_running_here(settings, big_capture):
    """On a fake clock, so the job counts' cache expires when the test says."""
    server = await RunningServer(settings, clock=FakeClock()).start()
    c = await Client(server.url, "owner").connect()
    try:
        await c.register(unique_email("pcap"))
        p = await c.ok("project:create", {"name": "Jobs"})
        await c.ok("project:join", {"id": p["id"]})
        token = c.tokens["accessToken"]
        # INGEST_CONCURRENCY=1: the first capture runs, the second waits behind it.
        status, first = await upload(server.url, token, p["id"], big_capture, "first.pcap")
        assert status == 201
        a = first["data"]["id"]
        await c.wait_for("pcap:progress", lambda d: d["fileId"] == a and d["packets"] > 0,
                         timeout=60)
        status, second = await upload(server.url, token, p["id"], big_capture, "second.pcap")
        b = second["data"]["id"]
        await c.wait_for("pcap:queued", lambda d: d["fileId"] == b)
        busy = await scrape(server.url)
        assert not c.pushes.get("pcap:done"), "the first capture ended before the scrape"
        assert value(busy, "collab_jobs", kind="pcap", state="queued") == 1
        assert value(busy, "collab_jobs", kind="pcap", state="running") == 1
        assert value(busy, "collab_jobs_running_here", kind="pcap") == 1
        for idle in ("queued", "running"):
            assert value(busy, "collab_jobs", None, kind="chat_import", state=idle) == 0
        assert value(busy, "collab_jobs_running_here", None, kind="chat_import") == 0

        for fid in (a, b):
            await c.ok("pcap:cancel", {"fileId": fid})
        await eventually(lambda: not services_of(server.app).pcap.running)
        cached = await scrape(server.url)  # within JOB_COUNTS_TTL_S of the last read
        assert value(cached, "collab_jobs_running_here", kind="pcap") == 0
        assert value(cached, "collab_jobs", kind="pcap", state="running") == 1
        await server.clock.advance(JOB_COUNTS_TTL_S)
        fresh = await scrape(server.url)
        assert value(fresh, "collab_jobs", kind="pcap", state="queued") == 0
        assert value(fresh, "collab_jobs", kind="pcap", state="running") == 0
    finally:
        await c.close()
        await server.stop()


async def test_bus_lag_is_measured_between_instances_of_one_redis(tmp_path):
    """Each instance sees its own probes come back through Redis (and only its own)."""
    with RedisServer() as redis:
        servers = []
        try:
            for name in ("a", "b"):
                settings = make_settings(tmp_path / name, redis_url=redis.url,
                                         instance_id=f"lag-{name}")
                servers.append(await RunningServer(settings, clock=FakeClock()).start())
            for srv in servers:
                # Each probe publishes at once on start, then every 5 s of its clock.
                samples = await eventually(lambda srv=srv: _lag_seen(srv.url), timeout=20)
                assert value(samples, "collab_bus_lag_seconds_count") == 1
                assert value(samples, "collab_bus_lag_seconds_sum") > 0
                assert value(samples, "collab_bus_probes_lost_total") == 0
            a = servers[0]
            await a.clock.advance(5.0)
            samples = await eventually(
                lambda: _lag_seen(a.url, count=2), timeout=20)
            assert value(samples, "collab_bus_lag_seconds_count") == 2
        finally:
            for srv in servers:
                await srv.stop()


async def _lag_seen(url: str, count: int = 1):
    samples = await scrape(url)
    return samples if value(samples, "collab_bus_lag_seconds_count") >= count else None


async def test_no_bus_probe_without_redis(server):
    samples = await scrape(server.url)
    assert value(samples, "collab_bus_lag_seconds_count", None) == 0


async def test_probe_counts_its_own_messages_and_its_lost_ones():
    """Two probes on one redis: each observes only its own; a probe whose bus has no
    subscriber (its messages never come back) counts them lost after ``lost_after``."""
    import redis.asyncio as aioredis

    with RedisServer() as server:
        clients = [aioredis.from_url(server.url) for _ in range(3)]
        buses = [RedisBus(clients[0]), RedisBus(clients[1])]
        seen: list[str] = []
        lags: dict[str, list[float]] = {"a": [], "b": []}
        lost: list[int] = []
        probes: dict[str, BusProbe] = {}
        try:
            for bus in buses:
                await bus.start()

            async def record(data: dict) -> None:
                seen.append(data["token"])
            buses[0].on(KIND, record)
            probes = {name: BusProbe(bus, FakeClock(), observe=lags[name].append,
                                     lost=lambda: lost.append(1))
                      for name, bus in zip(("a", "b"), buses, strict=True)}
            for probe in probes.values():
                await probe.start()  # publishes its first probe at once
            await eventually(lambda: set(seen) == {p.token for p in probes.values()})
            await eventually(lambda: lags["b"])
            assert len(lags["a"]) == 1 and len(lags["b"]) == 1 and lags["a"][0] > 0
            assert not lost

            silent = BusProbe(RedisBus(clients[2]), FakeClock(), observe=lags["a"].append,
                              lost=lambda: lost.append(1), lost_after=2)
            for _ in range(4):
                await silent.probe()
            assert len(lost) == 2 and sorted(silent.sent) == [3, 4]
        finally:
            for probe in probes.values():
                await probe.stop()
            for bus in buses:
                await bus.close()
            for client in clients:
                await client.aclose()


async def test_a_client_that_never_signs_in_is_a_socket_but_in_no_named_room(server):
    c = await Client(server.url, "anon").connect()
    try:
        samples = await scrape(server.url)
        assert value(samples, "collab_namespace_sockets", namespace="/") == 1
        assert not [k for k in samples if k[0] == "collab_rooms"]
    finally:
        await c.close()
