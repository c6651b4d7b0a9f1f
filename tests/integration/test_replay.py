"""Nothing missed on reconnect (issue 13, docs/DELIVERY.md): room pushes carry room/seq/epoch,
``sync`` replays what a client missed or says ``resync``, and a ``requestId`` makes a retried
call safe. Each test runs embedded and with Redis (one instance here; several in
tests/cluster/test_replay_cluster.py)."""
from __future__ import annotations

import asyncio

import pytest

from services.clock import FakeClock
from tests.client import Client, eventually, unique_email
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings


@pytest.fixture(params=["embedded", "redis"])
def backend(request):
    if request.param == "embedded":
        yield {}
        return
    redis = RedisServer().start()
    yield {"redis_url": redis.url}
    redis.stop()


class Room:
    """A server, its owner A with a project and a table, and an editor B in the room."""

    def __init__(self, srv: RunningServer):
        self.srv = srv
        self.clients: list[Client] = []

    async def client(self, token: str | None = None) -> Client:
        c = await Client(self.srv.url).connect(token)
        self.clients.append(c)
        return c

    async def setup(self, *, secret: bool = False) -> Room:
        self.a = await self.client()
        await self.a.register(unique_email("replay-a"))
        self.b = await self.client()
        await self.b.register(unique_email("replay-b"))
        self.project = (await self.a.ok("project:create", {"name": "Replay"}))["id"]
        self.room = f"project:{self.project}"
        await self.a.ok("project:member:add", {"id": self.project, "role": "editor",
                                               "email": self.b.user["email"]})
        columns = [{"name": "title"}, {"name": "pin", "secret": secret}]
        self.table = (await self.a.ok("table:create", {"projectId": self.project,
                                                       "name": "T", "columns": columns}))["id"]
        await self.a.ok("project:join", {"id": self.project})
        self.joined = await self.b.ok("project:join", {"id": self.project})
        return self

    async def add_rows(self, n: int, who: Client | None = None) -> list[dict]:
        return [await (who or self.a).ok("row:add", {"tableId": self.table,
                                                      "values": {"title": f"r{i}", "pin": "1"}})
                for i in range(n)]

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.srv.stop()


def sequenced(client: Client, room: str) -> list[tuple[str, dict]]:
    return [(e, d) for e, d in client.arrivals if isinstance(d, dict) and d.get("room") == room]


async def started(tmp_path, backend, clock=None, **settings) -> Room:
    srv = await RunningServer(make_settings(tmp_path, **backend, **settings), clock=clock).start()
    return await Room(srv).setup()


async def test_room_pushes_carry_a_gap_free_sequence_and_join_acks_the_head(tmp_path, backend):
    r = await started(tmp_path, backend)
    try:
        head = r.joined
        assert head["room"] == r.room and isinstance(head["epoch"], str) and head["seq"] >= 0
        acks = [await r.a.call("row:add", {"tableId": r.table, "values": {"title": str(i)}})
                for i in range(5)]
        await eventually(lambda: len(sequenced(r.b, r.room)) >= 5)
        got = sequenced(r.b, r.room)
        assert [e for e, _ in got] == ["row:added"] * 5
        assert [d["seq"] for _, d in got] == list(range(head["seq"] + 1, head["seq"] + 6))
        assert {d["epoch"] for _, d in got} == {head["epoch"]}
        # The sender is skipped (it has the ack): its ack names the push instead.
        assert [a["pushes"] for a in acks] == [
            [{"room": r.room, "seq": d["seq"], "epoch": head["epoch"]}] for _, d in got]
        assert not sequenced(r.a, r.room)
        # Presence is a snapshot, not sequenced; a read causes no push and lists none.
        assert r.b.pushes["project:presence"] and all(
            "seq" not in p for p in r.b.pushes["project:presence"])
        assert "pushes" not in await r.a.call("table:rows", {"tableId": r.table})
    finally:
        await r.close()


async def test_sync_replays_what_a_reconnecting_client_missed_in_order(tmp_path, backend):
    r = await started(tmp_path, backend)
    try:
        await r.add_rows(2)
        await eventually(lambda: len(sequenced(r.b, r.room)) == 2)
        last = sequenced(r.b, r.room)[-1][1]
        await r.b.close()
        rows = await r.add_rows(4)
        await r.a.ok("row:update", {"tableId": r.table, "rowId": rows[0]["id"], "version": 1,
                                    "values": {"title": "changed"}})
        b2 = await r.client(r.b.tokens["accessToken"])
        await b2.ok("project:join", {"id": r.project})
        ack = await b2.ok("sync", {"rooms": [{"room": r.room, "seq": last["seq"],
                                              "epoch": last["epoch"]}]})
        replayed = sequenced(b2, r.room)  # all before the ack
        assert [e for e, _ in replayed] == ["row:added"] * 4 + ["row:updated"]
        assert [d["seq"] for _, d in replayed] == list(range(last["seq"] + 1, last["seq"] + 6))
        assert [d["row"]["id"] for _, d in replayed[:4]] == [row["id"] for row in rows]
        assert replayed[4][1]["row"]["values"]["title"] == "changed"
        assert ack == {"replayed": {r.room: 5}, "resync": [], "errors": {},
                       "heads": {r.room: {"seq": last["seq"] + 5, "epoch": last["epoch"]}}}
        # Up to date: nothing to replay; seq null only asks where the room stands.
        ack = await b2.ok("sync", {"rooms": [{"room": r.room, "seq": last["seq"] + 5,
                                              "epoch": last["epoch"]},
                                             {"room": f"user:{r.b.user['id']}", "seq": None}]})
        assert ack["replayed"] == {} and ack["resync"] == []
        assert ack["heads"][f"user:{r.b.user['id']}"]["seq"] >= 0
    finally:
        await r.close()


async def test_a_gap_longer_than_the_buffer_or_older_than_the_window_is_resync(tmp_path, backend):
    clock = FakeClock()
    r = await started(tmp_path, backend, clock=clock, replay_window_s=60)
    try:
        head = r.joined
        await r.add_rows(1)
        await clock.advance(61)
        await r.add_rows(1)
        position = {"room": r.room, "seq": head["seq"], "epoch": head["epoch"]}
        ack = await r.b.ok("sync", {"rooms": [position]})
        assert ack["resync"] == [r.room] and ack["replayed"] == {}
        assert ack["heads"][r.room]["seq"] == head["seq"] + 2
        # From the head on, replay works again.
        ack = await r.b.ok("sync", {"rooms": [{**position, "seq": head["seq"] + 1}]})
        assert ack["replayed"] == {r.room: 1}
        # Another epoch is a resync too, whatever its seq.
        ack = await r.b.ok("sync", {"rooms": [{**position, "epoch": "not-this-one"}]})
        assert ack["resync"] == [r.room]
    finally:
        await r.close()


async def test_the_buffer_keeps_the_newest_events_only(tmp_path):
    r = await started(tmp_path, {}, replay_max_events=3)
    try:
        head = r.joined
        await r.add_rows(5)
        position = {"room": r.room, "epoch": head["epoch"]}
        ack = await r.b.ok("sync", {"rooms": [{**position, "seq": head["seq"]}]})
        assert ack["resync"] == [r.room]
        ack = await r.b.ok("sync", {"rooms": [{**position, "seq": head["seq"] + 2}]})
        assert ack["replayed"] == {r.room: 3}
    finally:
        await r.close()


async def test_a_restarted_embedded_server_starts_a_new_epoch(tmp_path):
    settings = make_settings(tmp_path)
    r = await Room(await RunningServer(settings).start()).setup()
    token = r.b.tokens["accessToken"]
    before = r.joined
    await r.close()
    srv = await RunningServer(settings).start()
    b = await Client(srv.url).connect(token)
    try:
        ack = await b.ok("sync", {"rooms": [{"room": r.room, "seq": before["seq"],
                                             "epoch": before["epoch"]}]})
        assert ack["resync"] == [r.room]
        assert ack["heads"][r.room]["epoch"] != before["epoch"]
    finally:
        await b.close()
        await srv.stop()


async def test_only_readable_rooms_sync(tmp_path, backend):
    r = await started(tmp_path, backend)
    try:
        stranger = await r.client()
        await stranger.register(unique_email("replay-stranger"))
        pos = {"room": r.room, "seq": 0, "epoch": r.joined["epoch"]}
        ack = await stranger.ok("sync", {"rooms": [pos]})
        assert ack["errors"][r.room]["code"] == "forbidden" and ack["heads"] == {}
        assert not sequenced(stranger, r.room)
        # A member removed meanwhile is refused that room, answered for the others.
        await r.a.ok("project:member:remove", {"id": r.project, "userId": r.b.user["id"]})
        own = f"user:{r.b.user['id']}"
        ack = await r.b.ok("sync", {"rooms": [pos, {"room": own, "seq": None}]})
        assert ack["errors"][r.room]["code"] == "forbidden" and own in ack["heads"]
        assert r.room not in ack["heads"] and r.room not in ack["replayed"]
        for room, code in ((f"user:{r.a.user['id']}", "forbidden"), ("ticker", "bad_request"),
                           (f"project:{r.project}:owners", "bad_request")):
            ack = await r.b.ok("sync", {"rooms": [{"room": room, "seq": 0}]})
            assert ack["errors"][room]["code"] == code, (room, ack)
        err = await r.b.err("sync", {"rooms": []})
        assert err["code"] == "bad_request"
    finally:
        await r.close()


async def test_replay_gives_each_member_the_form_they_may_see(tmp_path, backend):
    srv = await RunningServer(make_settings(tmp_path, **backend)).start()
    r = await Room(srv).setup(secret=True)
    try:
        viewer = await r.client()
        await viewer.register(unique_email("replay-viewer"))
        await r.a.ok("project:member:add", {"id": r.project, "role": "viewer",
                                            "email": viewer.user["email"]})
        head = await viewer.ok("project:join", {"id": r.project})
        await r.add_rows(1, who=r.b)  # the editor's row: clear for them and the owner
        live = await viewer.wait_for("row:added")
        assert live["row"]["values"]["pin"] != "1"
        position = {"room": r.room, "seq": head["seq"], "epoch": head["epoch"]}
        await viewer.ok("sync", {"rooms": [position]})
        await r.b.ok("sync", {"rooms": [position]})
        await r.a.ok("sync", {"rooms": [position]})
        masked = [d for _, d in sequenced(viewer, r.room)]
        assert len(masked) == 2 and masked[1] == masked[0] == live
        author = [d for _, d in sequenced(r.b, r.room)]
        owner = [d for _, d in sequenced(r.a, r.room)]
        assert author[-1]["row"]["values"]["pin"] == "1" == owner[-1]["row"]["values"]["pin"]
        assert author[-1]["seq"] == owner[-1]["seq"] == live["seq"]
    finally:
        await r.close()


async def test_conversation_pushes_are_sequenced_and_replayed(tmp_path, backend):
    r = await started(tmp_path, backend, chat_offline_delay_ms=0)
    try:
        conv = await r.a.ok("conversation:create", {"projectId": r.project})
        joined = await r.b.ok("conversation:join", {"id": conv["id"]})
        room = f"conversation:{conv['id']}"
        assert joined["room"] == room and joined["seq"] == 0
        await r.a.ok("message:send", {"conversationId": conv["id"], "content": "hello there"})
        done = await r.b.wait_for("message:done")
        # The title comes after the reply, in both rooms (one copy from each).
        await r.b.wait_for("conversation:updated", lambda d: d["room"] == room)
        got = sequenced(r.b, room)
        assert [e for e, _ in got][0] == "message:started" and got[-2][1] == done
        assert [d["seq"] for _, d in got] == list(range(1, len(got) + 1))
        await r.b.ok("sync", {"rooms": [{"room": room, "seq": 0, "epoch": joined["epoch"]}]})
        again = sequenced(r.b, room)[len(got):]
        assert again == got
        text = "".join(d["text"] for e, d in again if e == "message:delta")
        assert text == done["message"]["content"]
    finally:
        await r.close()


async def test_a_repeated_request_id_answers_the_first_ack_and_changes_nothing(tmp_path,
                                                                               backend):
    r = await started(tmp_path, backend)
    try:
        payload = {"tableId": r.table, "values": {"title": "once"}, "requestId": "req-1"}
        first = await r.a.call("row:add", payload)
        again = await r.a.call("row:add", payload)
        assert first["ok"] and again == first
        rows = (await r.a.ok("table:rows", {"tableId": r.table}))["items"]
        assert [row["values"]["title"] for row in rows] == ["once"]
        # Per user: another user's same id is another call.
        other = await r.b.call("row:add", payload)
        assert other["ok"] and other["data"]["id"] != first["data"]["id"]
        # An error ack is answered again as well (the call did not change anything).
        stale = {"tableId": r.table, "rowId": first["data"]["id"], "version": 99,
                 "values": {"title": "x"}, "requestId": "req-2"}
        e1, e2 = await r.a.call("row:update", stale), await r.a.call("row:update", stale)
        assert e1 == e2 and e1["error"]["code"] == "conflict"
        err = await r.a.err("row:delete", {"tableId": r.table, "rowId": first["data"]["id"],
                                           "version": 1, "requestId": "req-1"})
        assert err["code"] == "bad_request" and "row:add" in err["message"]
        for bad in ("", "x" * 65, "spaces not allowed", 7, None):
            err = await r.a.err("row:add", {**payload, "requestId": bad})
            assert err["code"] == "bad_request" and err["details"]["fields"][0][
                "field"] == "requestId"
        # Reads take one and ignore it.
        assert (await r.a.ok("table:rows", {"tableId": r.table, "requestId": "req-1"}))["items"]
        # Two at once: one runs, the other is told to retry, then gets the same ack.
        race = {**payload, "requestId": "req-3"}
        one, two = await asyncio.gather(r.a.call("row:add", race), r.a.call("row:add", race))
        assert one["ok"] or two["ok"]
        if not (one["ok"] and two["ok"]):
            busy = two if one["ok"] else one
            assert busy["error"]["code"] == "conflict" and busy["error"]["details"][
                "inProgress"] is True and busy["error"]["details"]["retryAfterMs"] > 0
        assert (await r.a.call("row:add", race)) == (one if one["ok"] else two)
        rows = (await r.a.ok("table:rows", {"tableId": r.table}))["items"]
        assert sorted(row["values"]["title"] for row in rows) == ["once", "once", "once"]
    finally:
        await r.close()
