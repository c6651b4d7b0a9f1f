"""services/clock.py: the FakeClock tests drive time with, and the SystemClock it stands for."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.clock import FakeClock, SystemClock


async def test_sleep_wakes_at_its_deadline_and_not_before():
    clock = FakeClock(start=1_000.0)
    woke_at: list[tuple[float, float]] = []

    async def sleeper():
        await clock.sleep(5)
        woke_at.append((clock.time(), clock.monotonic()))

    mono = clock.monotonic()
    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)  # parked on the clock
    assert clock.sleepers == 1
    await clock.advance(4.9)
    assert not task.done() and woke_at == []
    await clock.advance(0.2)  # passes the deadline: wakes reading the deadline itself
    assert task.done()
    assert woke_at == [(pytest.approx(1_005.0), pytest.approx(mono + 5))]
    assert clock.time() == pytest.approx(1_005.1) and clock.sleepers == 0


async def test_time_and_now_move_together_and_only_when_advanced():
    clock = FakeClock(start=1_800_000_000.0)
    assert clock.now() == datetime.fromtimestamp(1_800_000_000.0, UTC)
    await asyncio.sleep(0.01)  # real time passing does not move it
    assert clock.time() == 1_800_000_000.0
    await clock.advance(90)
    assert clock.now() == datetime.fromtimestamp(1_800_000_090.0, UTC)
    assert clock.now().tzinfo is UTC


async def test_sleep_zero_yields_without_waiting_for_advance():
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), 1)
    await asyncio.wait_for(clock.sleep(-1), 1)
    assert clock.sleepers == 0


async def test_call_later_runs_in_deadline_order_ties_first_come_each_at_its_time():
    clock = FakeClock(start=0.0)
    ran: list[tuple[str, float]] = []

    def note(name):
        ran.append((name, clock.time()))

    clock.call_later(3, note, "c")
    clock.call_later(1, note, "a")
    clock.call_later(2, note, "b1")
    clock.call_later(2, note, "b2")
    clock.call_later(-4, note, "now")  # a negative delay is "as soon as the clock moves"
    await clock.advance(2.5)
    assert ran == [("now", 0.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]
    await clock.advance(0.5)  # exactly at the deadline
    assert ran[-1] == ("c", 3.0)


async def test_cancel_stops_a_timer_and_a_cancelled_sleeper_leaves():
    clock = FakeClock()
    ran = []
    keep = clock.call_later(1, ran.append, "kept")
    gone = clock.call_later(1, ran.append, "cancelled")
    gone.cancel()
    assert clock.sleepers == 1
    task = asyncio.create_task(clock.sleep(1))
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 1
    await clock.advance(1)
    assert ran == ["kept"]
    keep.cancel()  # after it ran: harmless


async def test_a_callback_can_schedule_and_advance_runs_what_falls_in_the_window():
    clock = FakeClock(start=0.0)
    ran: list[float] = []

    def tick():
        ran.append(clock.time())
        if len(ran) < 5:
            clock.call_later(1, tick)

    clock.call_later(1, tick)
    await clock.advance(3.5)
    assert ran == [1.0, 2.0, 3.0]
    await clock.advance(10)
    assert ran == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_a_loop_sleeping_on_the_clock_runs_once_per_period():
    clock = FakeClock(start=0.0)
    beats: list[float] = []

    async def loop():
        while True:
            await clock.sleep(0.5)
            beats.append(clock.time())

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await clock.advance(2.2)
    assert beats == [0.5, 1.0, 1.5, 2.0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_advance_returns_after_what_it_woke_finished_its_io():
    """A woken task's real I/O (here a future another party resolves later) has completed
    when ``advance`` returns; and so has a task a timer's callback started."""
    clock = FakeClock(start=0.0)
    loop = asyncio.get_running_loop()
    done: list[str] = []

    async def renewer():
        await clock.sleep(1)
        reply = loop.create_future()
        loop.call_later(0.02, reply.set_result, "renewed")  # a network round trip
        done.append(await reply)
        await clock.sleep(1)  # parks again

    async def released():
        reply = loop.create_future()
        loop.call_later(0.02, reply.set_result, "released")
        done.append(await reply)

    task = asyncio.create_task(renewer())
    await asyncio.sleep(0)
    clock.call_later(1, lambda: asyncio.ensure_future(released()))
    await clock.advance(1)
    assert sorted(done) == ["released", "renewed"]
    task.cancel()


async def test_advance_fails_when_a_woken_task_waits_for_something_else():
    clock = FakeClock(settle_timeout=0.05)
    never = asyncio.get_running_loop().create_future()

    async def stuck():
        await clock.sleep(1)
        await never

    task = asyncio.create_task(stuck(), name="stuck-task")
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="stuck-task"):
        await clock.advance(1)
    task.cancel()


async def test_system_clock_is_the_real_one():
    clock = SystemClock()
    assert abs(clock.now().timestamp() - clock.time()) < 1
    assert clock.now().tzinfo is UTC
    fired = asyncio.Event()
    clock.call_later(-1, fired.set)  # clamped to 0
    await asyncio.wait_for(fired.wait(), 1)
    timer = clock.call_later(0, fired.clear)
    timer.cancel()
    await clock.sleep(0)
    assert fired.is_set()
