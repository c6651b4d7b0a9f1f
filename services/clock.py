"""Time as a dependency (Synapse's ``Clock``): every service that reads the clock, sleeps or
schedules takes a ``Clock``, so tests drive time with ``FakeClock.advance`` instead of
sleeping and hoping the machine was fast enough.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol


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
        return datetime.now(timezone.utc)

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
    ``advance`` passes their deadline; ``advance`` then yields to the loop so what they run
    (e.g. a lease renewal) has happened when it returns."""

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = start
        self._mono = 1000.0
        self._seq = itertools.count()
        self._due: list[tuple[float, int, _FakeTimer, Callable[..., Any], tuple]] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, timezone.utc)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = _FakeTimer()
        heapq.heappush(self._due, (self._mono + max(0.0, delay), next(self._seq), timer,
                                   callback, args))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, _wake, woken)
        try:
            await woken
        finally:
            timer.cancel()

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
                callback(*args)
                await _settle()
        self._now += target - self._mono
        self._mono = target
        await _settle()


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _settle(rounds: int = 20) -> None:
    # Let woken tasks run until they park again (each await of a ready future is one round).
    for _ in range(rounds):
        await asyncio.sleep(0)
