"""Graceful drain (issue 12): SIGTERM takes an instance out of rotation without cutting its
users off. Two instances behind nginx and Redis; a client connected through nginx to the
instance being drained is told, moved, reconnects through nginx to the other instance and
keeps its row lock; the capture ingest the drained instance was running completes on the
other one; the process exits cleanly; nothing acked is lost."""
from __future__ import annotations

import signal

import aiohttp
import pytest
import socketio

from bench.pcap_synth import write_capture
from tests.client import Client, eventually, unique_email
from tests.cluster.conftest import FAST, dump_logs
from tests.cluster.harness import Cluster
from tests.files_helpers import upload

PACKETS = 120_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "big.pcap", PACKETS).read_bytes()


class Roaming:
    """A python-socketio client that reconnects by itself (as browsers do), through nginx,
    recording its pushes and which instance answers."""

    def __init__(self, url: str, token: str):
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2,
                                        reconnection_delay_max=1, request_timeout=10)
        self.url, self.token = url, token
        self.connects = 0
        self.pushes: dict[str, list] = {}
        self.sio.on("connect", self._connected)
        self.sio.on("*", self._any)

    async def _connected(self):
        self.connects += 1

    async def _any(self, event, data=None):
        self.pushes.setdefault(event, []).append(data)

    async def connect(self) -> Roaming:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"],
                               wait_timeout=10)
        return self

    async def ok(self, event: str, data=None):
        ack = await self.sio.call(event, data or {}, timeout=10)
        assert ack["ok"], ack
        return ack["data"]

    async def instance(self) -> str:
        return (await self.ok("ping"))["instance"]


async def ready_status(url: str) -> int:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/ready") as r:
            return r.status
    except aiohttp.ClientError:
        return -1


async def test_sigterm_drains_an_instance_without_losing_anything(capture):
    env = {**FAST, "DRAIN_TIMEOUT_S": "3", "INGEST_LEASE_S": "3", "LOCK_GRACE_S": "15"}
    with Cluster(n=2, extra_env=env) as cluster:
        owner = await Client(cluster.instances[0].url, "owner").connect()
        await owner.register(unique_email("owner"))
        roamer_account = await Client(cluster.instances[0].url, "roamer").connect()
        reg = await roamer_account.register(unique_email("roamer"))
        p = await owner.ok("project:create", {"name": "Drain"})
        await owner.ok("project:member:add", {"id": p["id"], "email": reg["user"]["email"],
                                              "role": "editor"})
        table = await owner.ok("table:create", {"projectId": p["id"], "name": "T",
                                                "columns": [{"name": "n", "type": "number"}]})
        row = await owner.ok("row:add", {"tableId": table["id"], "values": {"n": 0}})

        # An ingest in flight; the instance running it is the one drained.
        status, out = await upload(cluster.instances[0].url, owner.tokens["accessToken"],
                                   p["id"], capture, "big.pcap")
        assert status == 201, out
        fid = out["data"]["id"]
        await owner.ok("project:join", {"id": p["id"]})
        await owner.wait_for("pcap:progress", lambda d: d["fileId"] == fid and d["packets"],
                             timeout=60)
        job_owner = (await owner.ok("pcap:summary", {"fileId": fid}))["job"]["owner"]
        names = [inst.name for inst in cluster.instances]
        victim = names.index(job_owner)
        survivor = cluster.instances[1 - victim]
        watcher = await Client(survivor.url, "watcher").connect(owner.tokens["accessToken"])
        await watcher.ok("project:join", {"id": p["id"]})

        # A client through nginx that landed on the victim (round robin: a few tries).
        roamer = None
        for _ in range(6):
            candidate = await Roaming(cluster.url, reg["tokens"]["accessToken"]).connect()
            if await candidate.instance() == job_owner:
                roamer = candidate
                break
            await candidate.sio.disconnect()
        assert roamer is not None, "nginx never sent the client to the ingesting instance"
        await roamer.ok("project:join", {"id": p["id"]})
        lock = await roamer.ok("row:lock", {"tableId": table["id"], "rowId": row["id"]})
        acked = await roamer.ok("row:update", {"tableId": table["id"], "rowId": row["id"],
                                               "version": row["version"],
                                               "lockToken": lock["lockToken"],
                                               "values": {"n": 1}})

        cluster.instances[victim].process.terminate(signal.SIGTERM)
        try:
            statuses = []

            async def draining():
                statuses.append(await ready_status(cluster.instances[victim].url))
                return statuses[-1] == 503
            await eventually(draining, timeout=5, interval=0.02)
            await eventually(lambda: roamer.pushes.get("server:draining"), timeout=5)
            assert "reconnectInMs" in roamer.pushes["server:draining"][0]
            await eventually(lambda: roamer.connects >= 2 and roamer.sio.connected,
                             timeout=20)
            where = await roamer.ok("ping")
            assert where["instance"] == survivor.name, where
            # The lock outlived the move: the same token, re-taken on the other instance.
            await roamer.ok("project:join", {"id": p["id"]})
            again = await roamer.ok("row:lock", {"tableId": table["id"], "rowId": row["id"]})
            assert again["lockToken"] == lock["lockToken"]
            # The ingest the victim handed back completes on the survivor.
            done = await watcher.wait_for("pcap:done", lambda d: d["fileId"] == fid,
                                          timeout=90)
            assert done["summary"]["packets"] == PACKETS
            job = (await watcher.ok("pcap:summary", {"fileId": fid}))["job"]
            assert job["state"] == "done" and job["attempt"] >= 2  # claimed again
            proc = cluster.instances[victim].process
            await eventually(lambda: not proc.alive, timeout=20)
            assert proc.returncode == 0, cluster.instances[victim].log_tail()
            # Nothing acked was lost.
            rows = await watcher.ok("table:rows", {"tableId": table["id"]})
            assert [r["values"]["n"] for r in rows["items"]] == [1]
            assert rows["items"][0]["version"] == acked["version"]
        except (AssertionError, TimeoutError):
            print(dump_logs(cluster))
            raise
        finally:
            await roamer.sio.disconnect()
            for c in (owner, roamer_account, watcher):
                await c.close()
