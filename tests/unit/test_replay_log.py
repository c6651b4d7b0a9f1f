"""The in-process replay buffer and the request ledger (services/replay.py,
services/idempotency.py) on a FakeClock; the Redis ones run in tests/integration/test_replay.py
and tests/cluster/test_replay_cluster.py."""
from __future__ import annotations

import pytest

from services.clock import FakeClock
from services.idempotency import MemoryLedger, Requests
from services.replay import Form, MemoryLog, sequenced
from store.errors import EventError


def push(log: MemoryLog, room: str, n: int, **extra) -> list[int]:
    return [log.append(room, "row:added", [Form(room, {"i": i, **extra})], None).seq
            for i in range(n)]


def test_rooms_number_their_pushes_apart_and_stamp_every_form():
    log = MemoryLog(FakeClock(), max_events=100, window_s=60)
    assert push(log, "project:a", 3) == [1, 2, 3]
    assert push(log, "project:b", 2) == [1, 2]
    forms = [Form("project:a:owners", {"v": "clear"}), Form("project:a:others", {"v": "***"},
                                                           masked=True)]
    head = log.append("project:a", "row:updated", forms, "author-1")
    assert head.seq == 4 and all(f.data["seq"] == 4 and f.data["room"] == "project:a"
                                 and f.data["epoch"] == log.epoch for f in forms)
    entry = log.since("project:a", 3, log.epoch).entries[0]
    assert (entry.payload_for(True)["v"], entry.payload_for(False)["v"]) == ("clear", "***")
    assert entry.author == "author-1"


async def test_since_replays_whole_gaps_only():
    clock = FakeClock()
    log = MemoryLog(clock, max_events=5, window_s=60)
    push(log, "project:a", 8)
    epoch = log.epoch
    assert [e.seq for e in log.since("project:a", 5, epoch).entries] == [6, 7, 8]
    assert log.since("project:a", 8, epoch).entries == []
    assert not log.since("project:a", 3, epoch).resync  # 4..8 are the five kept
    assert log.since("project:a", 2, epoch).resync  # 3 is older than the buffer
    assert not log.since("project:a", 2, epoch).entries
    assert log.since("project:a", 5, "other").resync  # another epoch
    assert log.since("project:a", 9, epoch).resync  # ahead of the room: history was lost
    assert MemoryLog(clock, 5, 60).epoch != epoch
    await clock.advance(61)
    assert log.since("project:a", 5, epoch).resync  # older than the window
    push(log, "project:b", 1)  # appending sweeps the stale buffers; numbers stay
    assert not log.rooms["project:a"].ring and log.head("project:a").seq == 8


def test_only_project_conversation_and_user_rooms_are_sequenced():
    assert all(map(sequenced, ["project:1", "conversation:2", "user:3"]))
    assert not any(map(sequenced, ["project:1:owners", "ticker", "project:", "sid123"]))


async def test_a_request_id_answers_its_first_ack_per_user_until_the_window_ends():
    clock = FakeClock()
    requests = Requests(MemoryLedger(clock), window_s=120)
    assert await requests.begin("u1", "r1", "row:add") is None
    with pytest.raises(EventError) as busy:
        await requests.begin("u1", "r1", "row:add")
    assert busy.value.code == "conflict" and busy.value.details["inProgress"] is True
    ack = {"ok": True, "data": {"id": "row-1"}}
    await requests.end("u1", "r1", "row:add", ack)
    assert await requests.begin("u1", "r1", "row:add") == ack
    assert await requests.begin("u2", "r1", "row:add") is None  # another user's id
    with pytest.raises(EventError) as other:
        await requests.begin("u1", "r1", "row:delete")
    assert other.value.code == "bad_request"
    # An outcome that may not have run is forgotten: the retry runs the call.
    assert await requests.begin("u1", "r2", "row:add") is None
    await requests.end("u1", "r2", "row:add",
                       {"ok": False, "error": {"code": "unavailable", "message": "x"}})
    assert await requests.begin("u1", "r2", "row:add") is None
    await clock.advance(121)
    assert await requests.begin("u1", "r1", "row:add") is None
