"""Capture ingest across instances: progress reaches clients on every instance, and a job
whose instance is SIGKILLed mid-ingest is resumed elsewhere with correct counts."""
from __future__ import annotations

import pytest

from bench.pcap_synth import write_capture
from tests.client import unique_email
from tests.cluster.conftest import FAST, dump_logs
from tests.cluster.harness import Cluster
from tests.files_helpers import upload

PACKETS = 120_000


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "big.pcap", PACKETS).read_bytes()


@pytest.fixture
def pcap_cluster():
    with Cluster(n=2, extra_env={**FAST, "INGEST_LEASE_S": "3"}) as c:
        yield c


async def two_members(cluster, connect):
    a = await connect(cluster.instances[0].url, name="a@0")
    b = await connect(cluster.instances[1].url, name="b@1")
    await a.register(unique_email("a"))
    await b.register(unique_email("b"))
    p = await a.ok("project:create", {"name": "Captures"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "viewer"})
    await a.ok("project:join", {"id": p["id"]})
    await b.ok("project:join", {"id": p["id"]})
    return a, b, p


async def count_packets(client, fid) -> list[int]:
    numbers, cursor = [], None
    while True:
        page = await client.ok("pcap:packets", {"fileId": fid, "limit": 1000,
                                                **({"cursor": cursor} if cursor else {})})
        numbers += [x["number"] for x in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            return numbers


async def test_sigkill_mid_ingest_completes_elsewhere(pcap_cluster, connect, big_capture):
    cluster = pcap_cluster
    a, b, p = await two_members(cluster, connect)
    status, out = await upload(cluster.instances[0].url, a.tokens["accessToken"], p["id"],
                               big_capture, "big.pcap")
    assert status == 201, out
    fid = out["data"]["id"]
    # Progress made on whichever instance runs the ingest reaches the client on the other.
    first = await b.wait_for("pcap:progress", lambda d: d["fileId"] == fid and d["packets"],
                             timeout=60)
    assert first["percent"] < 100
    owner = (await a.ok("pcap:summary", {"fileId": fid}))["job"]["owner"]
    victim = [inst.name for inst in cluster.instances].index(owner)
    survivor = 1 - victim
    watcher = b if survivor == 1 else a
    # The client on the instance that is not ingesting hears the progress too.
    await watcher.wait_for("pcap:progress", lambda d: d["fileId"] == fid and d["packets"],
                           timeout=30)
    cluster.kill(victim)
    try:
        done = await watcher.wait_for("pcap:done", lambda d: d["fileId"] == fid, timeout=90)
    except TimeoutError:
        pytest.fail("no pcap:done after the kill\n" + dump_logs(cluster))
    assert done["summary"]["packets"] == PACKETS
    job = (await watcher.ok("pcap:summary", {"fileId": fid}))["job"]
    assert job["state"] == "done" and job["attempt"] >= 2
    assert await count_packets(watcher, fid) == list(range(1, PACKETS + 1))
    udp = await watcher.ok("pcap:conversations", {"fileId": fid, "kind": "udp", "limit": 1000})
    tcp = await watcher.ok("pcap:conversations", {"fileId": fid, "kind": "tcp", "limit": 1000})
    assert sum(c["frames"] for c in udp["items"] + tcp["items"]) == PACKETS
    assert len(udp["items"]) + len(tcp["items"]) == 500
