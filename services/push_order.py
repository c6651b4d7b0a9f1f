"""Each room's pushes reach this instance's sockets in ``seq`` order, whichever instance made
them (docs/DELIVERY.md).

With Redis a push is numbered by one script that also publishes it; the instance that made
it hands it to its own sockets as soon as the script answers (no trip back through the
channel), and every other instance gets it from the channel, in Redis' order. Those two
paths can cross by a hair: another instance's push N, published before ours was numbered
N+1, may still sit unread in this instance's subscription when our script answers. So every
delivery to a sequenced room passes this gate: it goes out at once when it follows what
went out last; one that comes early waits until the pushes before it have come (or, should
they never come — a subscription lost for a moment, a push made before this instance
subscribed — until ``hold_s`` has passed; then what waited goes out in order). Nothing is
ever dropped: a push that comes late goes out late, and a client's own sequence tracking
sees the gap and ``sync``s.

A room this instance has seen nothing of lately opens with the push that comes first,
unless the script said the push before it was made within the last second (``fresh``):
then it may still be on its way, and the gate waits for it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.clock import Clock, Timer

log = logging.getLogger("services.push_order")

Send = Callable[[], Awaitable[None]]
HOLD_S = 0.25
MAX_ROOMS = 100_000
FRESH_MS = 1000  # what the numbering script calls "the push before it was made lately"


@dataclass(slots=True, eq=False)
class _Gate:
    epoch: str
    last: int  # the highest seq handed out here
    held: dict[int, list[Send]] = field(default_factory=dict)
    ready: deque[Send] = field(default_factory=deque)
    draining: bool = False
    timer: Timer | None = None


class PushOrder:
    def __init__(self, clock: Clock, hold_s: float = HOLD_S, max_rooms: int = MAX_ROOMS):
        self.clock, self.hold_s, self.max_rooms = clock, hold_s, max_rooms
        self.rooms: OrderedDict[str, _Gate] = OrderedDict()
        self.released_late = 0  # pushes that went out after waiting hold_s (a gap not filled)
        self._tasks: set[asyncio.Task] = set()

    async def offer(self, room: str, epoch: str, seq: int, fresh: bool, send: Send) -> None:
        """Hand ``send`` (the push ``seq`` of ``room``) out in its turn. Returns once it is
        handed out or held; the caller that finds the room's turn free hands out whatever
        became ready meanwhile too."""
        gate = self.rooms.get(room)
        if gate is None or gate.epoch != epoch:
            if gate is not None:
                self._release(gate)  # the old epoch's pushes go out first, in their order
                await self._drain(gate)
            # Waiting for seq - 1 only when it may still be coming.
            gate = _Gate(epoch, seq - 2 if fresh and seq > 1 else seq - 1)
            self.rooms[room] = gate
            if len(self.rooms) > self.max_rooms:
                self._forget_idle()
        else:
            self.rooms.move_to_end(room)
        if seq <= gate.last + 1:
            gate.ready.append(send)
            if seq > gate.last:
                gate.last = seq
                while gate.last + 1 in gate.held:
                    gate.last += 1
                    gate.ready.extend(gate.held.pop(gate.last))
                if not gate.held and gate.timer is not None:
                    gate.timer.cancel()
                    gate.timer = None
        else:
            gate.held.setdefault(seq, []).append(send)
            if gate.timer is None:
                gate.timer = self.clock.call_later(self.hold_s, self._expire, gate)
        await self._drain(gate)

    def reset(self) -> None:
        """Forget every room (this instance's subscription was lost: what it missed will not
        come); what was waiting goes out now, in order."""
        for gate in self.rooms.values():
            if gate.held:
                self._release(gate)
                self._spawn(gate)
        self.rooms.clear()

    def _expire(self, gate: _Gate) -> None:
        gate.timer = None
        if gate.held:
            self.released_late += sum(map(len, gate.held.values()))
            log.info("pushes released after waiting for an earlier one",
                     extra={"fields": {"count": sum(map(len, gate.held.values())),
                                       "after": gate.last}})
            self._release(gate)
            self._spawn(gate)

    @staticmethod
    def _release(gate: _Gate) -> None:
        for seq in sorted(gate.held):
            gate.ready.extend(gate.held.pop(seq))
            gate.last = max(gate.last, seq)
        if gate.timer is not None:
            gate.timer.cancel()
            gate.timer = None

    def _spawn(self, gate: _Gate) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(gate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _drain(gate: _Gate) -> None:
        """One task at a time hands a room's ready pushes out, in order (a send may await)."""
        if gate.draining:
            return
        gate.draining = True
        try:
            while gate.ready:
                send = gate.ready.popleft()
                try:
                    await send()
                except Exception:  # one failed push must not hold up the room's next
                    log.exception("delivering a push failed")
        finally:
            gate.draining = False

    def _forget_idle(self) -> None:
        """The least recently used idle rooms, as many as the cap is exceeded by (from the
        oldest end: the whole table is not walked for each new room)."""
        excess = len(self.rooms) - self.max_rooms
        idle: list[str] = []
        for room, gate in self.rooms.items():
            if len(idle) >= excess:
                break
            if not gate.held and not gate.ready and not gate.draining:
                idle.append(room)
        for room in idle:
            del self.rooms[room]
