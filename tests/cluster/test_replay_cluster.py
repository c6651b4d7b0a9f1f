"""Nothing missed on reconnect, across instances (issue 13): two instances behind Redis and
nginx; clients whose transport is cut (no clean disconnect) come back on the other instance,
``sync``, and end up with every push once and in order; a retried call is applied once."""
from __future__ import annotations

import asyncio

import pytest

from tests.client import Client, eventually, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster
from tests.cluster.test_redis_outage import until_status

ENV = {**FAST, "REPLAY_MAX_EVENTS": "400", "CHAT_OFFLINE_DELAY_MS": "15"}


@pytest.fixture(scope="module")
def cluster():
    with Cluster(n=2, extra_env=ENV) as c:
        yield c


def cut(client: Client) -> None:
    """Drop the socket's TCP connection under it, as a lost Wi-Fi would: no close frame, no
    Socket.IO disconnect; the server learns of it from the dead connection."""
    client.sio.eio.ws._conn.transport.abort()


class Tracker:
    """What the client library does with a room's pushes (server/web/client.js): deliver
    seq last+1 only, drop what was delivered, hold what comes early until the gap fills."""

    def __init__(self, room: str, seq: int, epoch: str):
        self.room, self.seq, self.epoch = room, seq, epoch
        self.held: dict[int, tuple[str, dict]] = {}
        self.delivered: list[tuple[str, dict]] = []
        self.dropped = 0
        self._read: dict[int, int] = {}

    def take(self, client: Client) -> int:
        """Feed the client's pushes not fed yet; how many are delivered so far."""
        start = self._read.get(id(client), 0)
        arrivals = client.arrivals[start:]
        self._read[id(client)] = start + len(arrivals)
        for event, data in arrivals:
            if not isinstance(data, dict) or data.get("room") != self.room:
                continue
            assert data["epoch"] == self.epoch, "an epoch change needs a resync"
            if data["seq"] <= self.seq or data["seq"] in self.held:
                self.dropped += 1
                continue
            self.held[data["seq"]] = (event, data)
            while self.seq + 1 in self.held:
                self.seq += 1
                self.delivered.append(self.held.pop(self.seq))
        return len(self.delivered)

    def position(self) -> dict:
        return {"room": self.room, "seq": self.seq, "epoch": self.epoch}


async def registered(cluster: Cluster, inst: int, name: str, clients: list[Client]) -> Client:
    c = await Client(cluster.instances[inst].url, name).connect()
    clients.append(c)
    await c.register(unique_email(name.split("@")[0]))
    return c


async def back_on(cluster: Cluster, inst: int, old: Client, clients: list[Client]) -> Client:
    """The same user's new socket on instance ``inst`` (the old one was cut)."""
    c = await Client(cluster.instances[inst].url, old.name + "'").connect(
        old.tokens["accessToken"])
    c.user, c.tokens = old.user, old.tokens
    clients.append(c)
    return c


class Scene:
    """A (instance 1) owns a project with a table; B (instance 0) is an editor in its room."""

    async def build(self, cluster: Cluster, clients: list[Client]) -> Scene:
        self.cluster, self.clients = cluster, clients
        self.a = await registered(cluster, 1, "a@1", clients)
        self.b = await registered(cluster, 0, "b@0", clients)
        self.project = (await self.a.ok("project:create", {"name": "Replay cluster"}))["id"]
        await self.a.ok("project:member:add", {"id": self.project, "role": "editor",
                                               "email": self.b.user["email"]})
        self.table = (await self.a.ok("table:create", {
            "projectId": self.project, "name": "T", "columns": [{"name": "title"}]}))["id"]
        await self.a.ok("project:join", {"id": self.project})
        self.joined = await self.b.ok("project:join", {"id": self.project})
        self.room = self.joined["room"]
        return self

    async def add_rows(self, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            await self.a.ok("row:add", {"tableId": self.table, "values": {"title": f"row {i}"}})


async def run(cluster: Cluster, body) -> None:
    clients: list[Client] = []
    try:
        await body(await Scene().build(cluster, clients))
    except BaseException:
        print(cluster.logs(60))
        raise
    finally:
        for c in clients:
            await c.close()


async def test_a_cut_client_gets_all_200_pushes_in_order_on_the_other_instance(cluster):
    async def body(s: Scene):
        writing = asyncio.create_task(s.add_rows(200))
        await eventually(lambda: len(s.b.pushes["row:added"]) >= 20)
        cut(s.b)
        seen = Tracker(s.room, s.joined["seq"], s.joined["epoch"])
        seen.take(s.b)
        b2 = await back_on(s.cluster, 1, s.b, s.clients)
        head = await b2.ok("project:join", {"id": s.project})
        assert head["epoch"] == s.joined["epoch"]
        ack = await b2.ok("sync", {"rooms": [seen.position()]})
        assert ack["resync"] == [] and ack["replayed"].get(s.room, 0) > 0
        await writing
        await eventually(lambda: seen.take(b2) == 200, timeout=20)
        titles = [d["row"]["values"]["title"] for _, d in seen.delivered]
        assert titles == [f"row {i}" for i in range(200)]
        assert not seen.held

    await run(cluster, body)


async def test_a_viewer_cut_mid_reply_gets_the_missing_deltas(cluster):
    async def body(s: Scene):
        conv = await s.a.ok("conversation:create", {"projectId": s.project})
        joined = await s.b.ok("conversation:join", {"id": conv["id"]})
        room = joined["room"]
        await s.a.ok("message:send", {"conversationId": conv["id"],
                                      "content": "Tell me a long story " * 20})
        await eventually(lambda: len(s.b.pushes["message:delta"]) >= 2)
        cut(s.b)
        seen = Tracker(room, joined["seq"], joined["epoch"])
        seen.take(s.b)
        b2 = await back_on(s.cluster, 1, s.b, s.clients)
        await b2.ok("conversation:join", {"id": conv["id"]})
        await b2.ok("sync", {"rooms": [seen.position()]})
        done = await b2.wait_for("message:done", timeout=30)
        await eventually(lambda: seen.take(b2) and seen.delivered[-1][0] in (
            "message:done", "conversation:updated"))
        events = [e for e, _ in seen.delivered]
        assert events[0] == "message:started" and "message:done" in events
        deltas = [d for e, d in seen.delivered if e == "message:delta"]
        assert [d["index"] for d in deltas] == list(range(len(deltas)))
        assert "".join(d["text"] for d in deltas) == done["message"]["content"]
        assert len(s.b.pushes["message:delta"]) < len(deltas), "the cut missed nothing"

    await run(cluster, body)


async def test_a_gap_longer_than_the_buffer_is_resync(cluster):
    async def body(s: Scene):
        position = {"room": s.room, "seq": s.joined["seq"], "epoch": s.joined["epoch"]}
        await s.b.close()
        # REPLAY_MAX_EVENTS=400 (Redis trims approximately: past 400 and then some).
        batch = 50
        for start in range(0, 1000, batch):
            await asyncio.gather(*(s.a.ok("row:add", {"tableId": s.table, "values": {
                "title": f"row {i}"}}) for i in range(start, start + batch)))
        b2 = await back_on(s.cluster, 1, s.b, s.clients)
        ack = await b2.ok("sync", {"rooms": [position]})
        assert ack["resync"] == [s.room] and ack["replayed"] == {}
        assert ack["heads"][s.room]["seq"] == s.joined["seq"] + 1000
        assert not [d for _, d in b2.arrivals if isinstance(d, dict) and d.get("room")]
        # The newest 300 are still there.
        ack = await b2.ok("sync", {"rooms": [{**position, "seq": s.joined["seq"] + 700}]})
        assert ack["replayed"] == {s.room: 300}

    await run(cluster, body)


async def test_a_removed_member_cannot_sync_the_room(cluster):
    async def body(s: Scene):
        await s.add_rows(2)
        await s.a.ok("project:member:remove", {"id": s.project, "userId": s.b.user["id"]})
        position = {"room": s.room, "seq": s.joined["seq"], "epoch": s.joined["epoch"]}
        for c in (s.b, await back_on(s.cluster, 1, s.b, s.clients)):
            before = len(c.arrivals)
            ack = await c.ok("sync", {"rooms": [position]})
            assert ack["errors"][s.room]["code"] == "forbidden" and not ack["heads"]
            assert [d for _, d in c.arrivals[before:] if isinstance(d, dict)
                    and d.get("room") == s.room] == []

    await run(cluster, body)


async def test_a_call_whose_ack_was_lost_is_retried_on_the_other_instance_once(cluster):
    async def body(s: Scene):
        payload = {"tableId": s.table, "values": {"title": "exactly once"},
                   "requestId": "lost-ack-1"}
        await s.b.sio.emit("row:add", payload)  # its ack would come on this socket
        added = await s.a.wait_for("row:added", lambda d: d["row"]["values"]["title"]
                                   == "exactly once")
        cut(s.b)
        b2 = await back_on(s.cluster, 1, s.b, s.clients)
        retried = await b2.ok("row:add", payload)
        assert retried["id"] == added["row"]["id"]
        rows = (await b2.ok("table:rows", {"tableId": s.table}))["items"]
        assert [r["values"]["title"] for r in rows] == ["exactly once"]
        assert len(s.a.pushes["row:added"]) == 1

    await run(cluster, body)


async def test_a_redis_restart_starts_a_new_epoch_and_nothing_wrong_is_replayed():
    with Cluster(n=2, nginx=False, extra_env=ENV) as cluster:
        async def body(s: Scene):
            await s.add_rows(3)
            await eventually(lambda: len(s.b.pushes["row:added"]) == 3)
            position = {"room": s.room, "seq": s.joined["seq"] + 3, "epoch": s.joined["epoch"]}
            cluster.redis.stop()
            cluster.redis.start()
            for inst in cluster.instances:
                await until_status(inst, "/ready", 200)
            # A push made while an instance is still reconnecting reaches its own sockets
            # only (docs/DELIVERY.md): add rows until one crosses to B, under the new epoch.
            added = 3

            async def crossed():
                nonlocal added
                await s.add_rows(1, start=added)
                added += 1
                return [d for d in s.b.pushes["row:added"] if d["epoch"] != s.joined["epoch"]]

            after = (await eventually(crossed, timeout=30, interval=0.2))[0]
            ack = await s.b.ok("sync", {"rooms": [position]})
            assert ack["resync"] == [s.room] and ack["replayed"] == {}
            assert ack["heads"][s.room]["epoch"] == after["epoch"]

        await run(cluster, body)


async def test_concurrent_pushes_from_both_instances_arrive_in_seq_order_everywhere(cluster):
    """Two writers, one per instance, add rows at once: each receiver (one per instance)
    gets the room's pushes exactly in seq order, gap-free, the same sequence on both."""
    async def body(s: Scene):
        writer = await back_on(s.cluster, 0, s.a, s.clients)  # A again, on instance 0
        watcher = await registered(s.cluster, 1, "w@1", s.clients)
        await s.a.ok("project:member:add", {"id": s.project, "role": "viewer",
                                            "email": watcher.user["email"]})
        start = (await watcher.ok("project:join", {"id": s.project}))["seq"]

        async def write(c: Client, tag: str):
            await asyncio.gather(*(c.ok("row:add", {"tableId": s.table, "values": {
                "title": f"{tag} {i}"}}) for i in range(60)))

        await asyncio.gather(write(s.a, "one"), write(writer, "zero"))
        for c in (s.b, watcher):  # neither wrote: each gets all 120
            await eventually(lambda c=c: len(c.pushes["row:added"]) == 120)
        seqs = {c.name: [d["seq"] for d in c.pushes["row:added"]] for c in (s.b, watcher)}
        assert seqs[watcher.name] == list(range(start + 1, start + 121))
        assert seqs[s.b.name][-120:] == seqs[watcher.name]

    await run(cluster, body)


async def test_a_guests_spend_reaches_their_tab_on_the_other_instance(cluster):
    """auth:quota goes to the guest's own room (numbered like every user-room push): their
    other tab, on the other instance, sees what is left after a message sent from this one."""
    here = await Client(cluster.instances[0].url, "guest@0").connect()
    there = None
    try:
        await here.guest()
        there = await Client(cluster.instances[1].url, "guest@1").connect(
            here.tokens["accessToken"])
        conv = await here.ok("conversation:create", {})
        ack = await here.ok("message:send", {"conversationId": conv["id"], "content": "hi"})
        left = ack["remainingMessages"]
        pushed = await there.wait_for("auth:quota", lambda d: d["remainingMessages"] == left)
        assert pushed["userId"] == here.user["id"] and pushed["room"] == \
            f"user:{here.user['id']}" and pushed["seq"] >= 1
    finally:
        for c in (here, there):
            if c is not None:
                await c.close()
