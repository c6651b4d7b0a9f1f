"""Ingest jobs on one instance: cancel removes partial data, INGEST_CONCURRENCY queues the
rest with their positions, and a job left by a dead instance is resumed to the same result."""
from __future__ import annotations

import asyncio
import time

import pytest

from bench.pcap_synth import write_capture
from ingest.pcap.run import IngestRun
from server.keys import services_of
from store.base import PcapPacket
from tests.client import eventually
from tests.conftest import make_settings
from tests.files_helpers import upload
from tests.integration.test_pcap import owner_project
from tests.pcap_files import PCAPS


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, ingest_concurrency=1, ingest_lease_s=1.5)


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "big.pcap", 40_000).read_bytes()


async def test_cancel_removes_partial_data_and_ingest_runs_again(clients, server, big_capture):
    c, p = await owner_project(clients, server)
    status, out = await upload(server.url, c.tokens["accessToken"], p["id"], big_capture,
                               "big.pcap")
    assert status == 201
    fid = out["data"]["id"]
    first = await c.wait_for("pcap:progress", lambda d: d["fileId"] == fid and d["packets"] > 0,
                             timeout=60)
    assert 0 < first["percent"] < 100 and first["rate"] > 0 and first["etaSeconds"] >= 0
    assert await c.ok("pcap:cancel", {"fileId": fid}) == {"fileId": fid, "state": "cancelled"}
    await c.wait_for("pcap:cancelled", lambda d: d["fileId"] == fid)
    assert (await c.ok("pcap:summary", {"fileId": fid}))["job"]["state"] == "cancelled"

    async def emptied():
        return (await c.ok("pcap:packets", {"fileId": fid}))["items"] == []
    await eventually(emptied, timeout=20)
    assert (await c.err("pcap:cancel", {"fileId": fid}))["code"] == "conflict"
    assert not c.pushes.get("pcap:done")

    c.forget("pcap:progress")
    job = await c.ok("pcap:ingest", {"fileId": fid})
    assert job["state"] in ("queued", "running")
    done = await c.wait_for("pcap:done", lambda d: d["fileId"] == fid, timeout=120)
    assert done["summary"]["packets"] == 40_000
    assert c.pushes["pcap:progress"][-1]["percent"] == 100.0


async def test_concurrency_limit_queues_with_positions(clients, server, big_capture):
    c, p = await owner_project(clients, server)
    token = c.tokens["accessToken"]
    status, first = await upload(server.url, token, p["id"], big_capture, "first.pcap")
    assert status == 201
    a = first["data"]["id"]
    await c.wait_for("pcap:progress", lambda d: d["fileId"] == a and d["packets"] > 0,
                     timeout=60)
    status, second = await upload(server.url, token, p["id"],
                                  (PCAPS / "dns-udp.pcap").read_bytes(), "second.pcap")
    b = second["data"]["id"]
    queued = await c.wait_for("pcap:queued", lambda d: d["fileId"] == b)
    assert queued["position"] == 1
    summary = await c.ok("pcap:summary", {"fileId": b})
    if summary["job"]["state"] == "queued":  # unless the first finished meanwhile
        assert summary["job"]["position"] == 1
        assert (await c.ok("pcap:summary", {"fileId": a}))["job"]["state"] == "running"
    done_a = await c.wait_for("pcap:done", lambda d: d["fileId"] == a, timeout=120)
    done_b = await c.wait_for("pcap:done", lambda d: d["fileId"] == b, timeout=60)
    assert done_a["summary"]["packets"] == 40_000 and done_b["summary"]["packets"] == 5
    order = [x["fileId"] for x in c.pushes["pcap:done"]]
    assert order.index(a) < order.index(b)


async def test_a_dead_instances_job_is_resumed_to_the_same_result(clients, server):
    c, p = await owner_project(clients, server)
    path = PCAPS / "sanders-http_espn.pcapng"
    services = services_of(server.app)
    store = services.store.pcap
    pool = services.pcap
    # This instance's pool pauses while a "dead" instance takes the job and stores half.
    pool._loop_task.cancel()
    status, out = await upload(server.url, c.tokens["accessToken"], p["id"], path.read_bytes(),
                               "espn.pcapng")
    fid = out["data"]["id"]
    job = await store.claim_job(instance="dead", now=time.time(), lease_s=0.5)
    assert job is not None and job.file_id == fid and job.owner == "dead"
    rows = []
    IngestRun(path, on_batch=rows.extend, batch_size=100).run()
    half = [PcapPacket(r.number, r.ts, r.length, r.caplen, r.src, r.dst, r.sport, r.dport,
                       r.l4, r.stream, r.protocol, r.info, r.offset, r.reclen, r.section)
            for r in rows[:400]]
    assert await store.add_packets(fid, job.attempt, half)
    pool._loop_task = asyncio.create_task(pool._claim_loop())
    done = await c.wait_for("pcap:done", lambda d: d["fileId"] == fid, timeout=60)
    assert done["summary"]["packets"] == 956
    resumed = await store.get_job(fid)
    assert resumed.attempt == job.attempt + 1 and resumed.state == "done"
    numbers, cursor = [], None
    while True:
        page = await c.ok("pcap:packets", {"fileId": fid, "limit": 1000,
                                           **({"cursor": cursor} if cursor else {})})
        numbers += [x["number"] for x in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert numbers == list(range(1, 957))
    # The dead instance's late write is refused: its attempt is over.
    assert not await store.add_packets(fid, job.attempt, half)
    # Same figures as an uninterrupted ingest of the same bytes.
    _, fresh = (await upload(server.url, c.tokens["accessToken"], p["id"], path.read_bytes(),
                             "espn.pcapng"))
    again = await c.wait_for("pcap:done", lambda d: d["fileId"] == fresh["data"]["id"],
                             timeout=60)
    strip = lambda s: {k: v for k, v in s.items() if k != "name"}  # noqa: E731
    assert strip(again["summary"]) == strip(done["summary"])
    for kind in ("tcp", "ip"):
        x = await c.ok("pcap:conversations", {"fileId": fid, "kind": kind, "limit": 1000})
        y = await c.ok("pcap:conversations", {"fileId": fresh["data"]["id"], "kind": kind,
                                              "limit": 1000})
        assert x["items"] == y["items"]
