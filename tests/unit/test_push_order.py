"""The per-room delivery gate (services/push_order.py) on a FakeClock: pushes numbered by
Redis reach this instance's sockets in seq order whichever path brought them; the cluster
behaviour is in tests/cluster/test_replay_cluster.py."""
from __future__ import annotations

import asyncio

from services.clock import FakeClock
from services.push_order import PushOrder


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []

    def send(self, room: str, seq: int, pause: bool = False):
        async def deliver() -> None:
            if pause:  # a send that awaits (a socket's write draining)
                await asyncio.sleep(0)
            self.got.append((room, seq))
        return deliver


async def test_in_order_pushes_go_out_at_once_and_rooms_are_apart():
    order, sink = PushOrder(FakeClock()), Sink()
    for seq in (1, 2, 3):
        await order.offer("project:a", "e1", seq, False, sink.send("project:a", seq))
    await order.offer("project:b", "e1", 7, False, sink.send("project:b", 7))
    assert sink.got == [("project:a", 1), ("project:a", 2), ("project:a", 3), ("project:b", 7)]


async def test_an_early_push_waits_for_the_one_before_it():
    order, sink = PushOrder(FakeClock()), Sink()
    await order.offer("project:a", "e1", 1, False, sink.send("project:a", 1))
    await order.offer("project:a", "e1", 3, True, sink.send("project:a", 3))
    await order.offer("project:a", "e1", 4, True, sink.send("project:a", 4))
    assert sink.got == [("project:a", 1)]
    await order.offer("project:a", "e1", 2, True, sink.send("project:a", 2))
    assert [seq for _, seq in sink.got] == [1, 2, 3, 4]
    assert order.released_late == 0


async def test_a_gap_never_filled_is_given_up_after_the_hold():
    clock = FakeClock()
    order, sink = PushOrder(clock, hold_s=0.25), Sink()
    await order.offer("project:a", "e1", 1, False, sink.send("project:a", 1))
    await order.offer("project:a", "e1", 4, True, sink.send("project:a", 4))
    await order.offer("project:a", "e1", 3, True, sink.send("project:a", 3))
    await clock.advance(0.2)
    assert [seq for _, seq in sink.got] == [1]
    await clock.advance(0.1)
    await asyncio.sleep(0)  # the release runs in a task of its own
    assert [seq for _, seq in sink.got] == [1, 3, 4]
    assert order.released_late == 2
    # The room goes on from there; the missing push, should it come after all, goes out
    # late rather than never.
    await order.offer("project:a", "e1", 5, True, sink.send("project:a", 5))
    await order.offer("project:a", "e1", 2, True, sink.send("project:a", 2))
    assert [seq for _, seq in sink.got] == [1, 3, 4, 5, 2]


async def test_a_room_first_seen_waits_only_when_its_previous_push_is_fresh():
    order, sink = PushOrder(FakeClock()), Sink()
    await order.offer("project:a", "e1", 41, False, sink.send("project:a", 41))
    assert sink.got == [("project:a", 41)]  # the previous push is old: nothing to wait for
    await order.offer("project:b", "e1", 9, True, sink.send("project:b", 9))
    assert sink.got == [("project:a", 41)]  # 8 was made a moment ago: it may be coming
    await order.offer("project:b", "e1", 8, True, sink.send("project:b", 8))
    assert sink.got[1:] == [("project:b", 8), ("project:b", 9)]


async def test_a_new_epoch_starts_the_room_over_after_what_waited():
    clock = FakeClock()
    order, sink = PushOrder(clock), Sink()
    await order.offer("project:a", "e1", 5, False, sink.send("project:a", 5))
    await order.offer("project:a", "e1", 7, True, sink.send("project:a", 7))
    await order.offer("project:a", "e2", 1, False, sink.send("project:a", 1))
    assert [seq for _, seq in sink.got] == [5, 7, 1]
    await order.offer("project:a", "e2", 2, True, sink.send("project:a", 2))
    assert [seq for _, seq in sink.got] == [5, 7, 1, 2]


async def test_sends_that_await_keep_the_order_across_concurrent_offers():
    order, sink = PushOrder(FakeClock()), Sink()
    await order.offer("project:a", "e1", 1, False, sink.send("project:a", 1))
    await asyncio.gather(*(order.offer("project:a", "e1", seq, True,
                                       sink.send("project:a", seq, pause=True))
                           for seq in (4, 2, 6, 3, 5)))
    assert [seq for _, seq in sink.got] == [1, 2, 3, 4, 5, 6]


async def test_reset_releases_what_waited_and_forgets_the_rooms():
    order, sink = PushOrder(FakeClock()), Sink()
    await order.offer("project:a", "e1", 1, False, sink.send("project:a", 1))
    await order.offer("project:a", "e1", 3, True, sink.send("project:a", 3))
    order.reset()
    await asyncio.sleep(0)
    assert [seq for _, seq in sink.got] == [1, 3]
    assert order.rooms == {}


async def test_idle_rooms_are_forgotten_past_the_cap():
    order, sink = PushOrder(FakeClock(), max_rooms=3), Sink()
    for i in range(6):
        await order.offer(f"project:{i}", "e1", 1, False, sink.send(f"project:{i}", 1))
    assert list(order.rooms) == ["project:3", "project:4", "project:5"]
