"""Time as a dependency (Synapse's ``Clock``): every service that reads the clock, sleeps or
schedules takes a ``Clock``, so tests drive time with ``FakeClock.advance`` instead of
sleeping and hoping the machine was fast enough.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what leases and expiries compare to)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, rates)."""

    def now(self) -> datetime:
        """``time()`` as an aware UTC datetime."""

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback, *args)


class _FakeTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told. Sleepers and timers wake, in deadline order, when
    ``advance`` passes their deadline; after each wake ``advance`` waits until every task it
    woke (a sleeper, or a task a timer's callback started) has parked on the clock again or
    ended, so what they run (e.g. a lease renewal, including its I/O) has happened when it
    returns. A woken task that neither parks nor ends within ``settle_timeout`` real seconds
    fails the ``advance`` (it is waiting for something the clock cannot give it)."""

    def __init__(self, start: float = 1_800_000_000.0, *, settle_timeout: float = 10.0):
        self._now = start
        self._mono = 1000.0
        self._seq = itertools.count()
        self._due: list[tuple[float, int, _FakeTimer, Callable[..., Any], tuple]] = []
        self._awake: set[asyncio.Task] = set()  # woken by advance, not parked again yet
        self.settle_timeout = settle_timeout

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = _FakeTimer()
        heapq.heappush(self._due, (self._mono + max(0.0, delay), next(self._seq), timer,
                                   callback, args))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        task = asyncio.current_task()
        woken = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, _wake, woken)
        self._awake.discard(task)  # parked
        try:
            await woken
        finally:
            timer.cancel()
        if task is not None:
            self._awake.add(task)  # running again until it parks or ends

    @property
    def sleepers(self) -> int:
        """Timers and sleeps still waiting (a test's marker that a loop has parked)."""
        return sum(1 for *_, timer, _cb, _a in self._due if not timer.cancelled)

    async def advance(self, seconds: float) -> None:
        target = self._mono + seconds
        while self._due and self._due[0][0] <= target:
            due, _, timer, callback, args = heapq.heappop(self._due)
            self._now += due - self._mono
            self._mono = due
            if not timer.cancelled:
                before = asyncio.all_tasks()
                callback(*args)
                self._awake |= asyncio.all_tasks() - before
                await self._quiesce()
        self._now += target - self._mono
        self._mono = target
        await self._quiesce()

    async def _quiesce(self) -> None:
        await _settle()
        me = asyncio.current_task()
        deadline = time.monotonic() + self.settle_timeout
        while True:
            self._awake = {t for t in self._awake if not t.done()}
            busy = [t for t in self._awake if t is not me]
            if not busy:
                return
            if time.monotonic() > deadline:
                names = ", ".join(sorted(t.get_name() for t in busy))
                raise RuntimeError(f"FakeClock.advance: {names} woke and neither parked on the "
                                   f"clock again nor ended within {self.settle_timeout} s")
            # Real I/O (a socket, Redis) completes only while the loop waits for it.
            await asyncio.sleep(0.001)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _settle(rounds: int = 20) -> None:
    # Let woken tasks run until they park again (each await of a ready future is one round).
    for _ in range(rounds):
        await asyncio.sleep(0)
