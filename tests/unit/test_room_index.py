"""The managers' reverse room index (server/room_index.py) against python-socketio's own
bookkeeping: after any mix of joins, leaves, closes and disconnects both agree."""
from __future__ import annotations

import random

from socketio import AsyncManager

from server.local_delivery import LocalManager


def table(manager) -> dict:
    return {ns: {room: dict(members) for room, members in rooms.items()}
            for ns, rooms in manager.rooms.items()}


async def test_the_index_keeps_the_same_room_table_as_python_socketio():
    rng = random.Random(7)
    ours, theirs = LocalManager(), AsyncManager()
    sids: list[str] = []
    for step in range(3000):
        action = rng.random()
        if action < 0.2 or not sids:
            sid = f"s{step}"
            for m in (ours, theirs):
                m.rooms.setdefault("/", {}).setdefault(None, {})
                m.basic_enter_room(sid, "/", None, eio_sid=f"e{step}")
                m.basic_enter_room(sid, "/", sid, eio_sid=f"e{step}")
            sids.append(sid)
        elif action < 0.6:
            sid, room = rng.choice(sids), f"project:{rng.randrange(20)}"
            for m in (ours, theirs):
                m.basic_enter_room(sid, "/", room)
        elif action < 0.8:
            sid, room = rng.choice(sids), f"project:{rng.randrange(20)}"
            for m in (ours, theirs):
                m.basic_leave_room(sid, "/", room)
        elif action < 0.85:
            room = f"project:{rng.randrange(20)}"
            for m in (ours, theirs):
                m.basic_close_room(room, "/")
        else:
            sid = sids.pop(rng.randrange(len(sids)))
            for m in (ours, theirs):
                m.basic_disconnect(sid, "/")
        assert table(ours) == table(theirs), f"step {step}"
    for sid in sids:
        assert sorted(ours.get_rooms(sid, "/"), key=str) == \
            sorted(theirs.get_rooms(sid, "/"), key=str)
