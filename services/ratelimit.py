"""Fixed-window counters and slot reservations for sign-in and sign-up limits, shared by
all instances through Redis."""
from __future__ import annotations

import asyncio
import math
from typing import Protocol

from redis.exceptions import RedisError

from services.clock import Clock, SystemClock


class Counter(Protocol):
    """Fixed-window event counts (``MemoryCounter`` in one process, ``RedisCounter`` shared)."""

    async def hit(self, key: str, window: float) -> tuple[int, float]: ...

    async def peek(self, key: str, window: float) -> tuple[int, float]: ...

    async def reset(self, key: str) -> None: ...

    async def reserve(self, key: str, interval: float, window: float,
                      max_wait: float) -> float:
        """Take the next free slot of a queue where slots are ``interval`` apart, unless it
        is more than ``max_wait`` seconds away; returns the seconds until it (taken or
        not). The queue is forgotten ``window`` seconds after the last slot taken."""
        ...


class MemoryCounter:
    def __init__(self, clock: Clock):
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._slots: dict[str, tuple[float, float]] = {}  # key -> (next free, forget at)

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count one event; returns (events in the window, seconds until it resets)."""
        now = self.clock.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        self._windows[key] = (start, count + 1)
        if len(self._windows) > 100_000:  # bound memory under a spray of keys
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        return count + 1, window - (now - start)

    async def peek(self, key: str, window: float) -> tuple[int, float]:
        now = self.clock.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= window:
            return 0, 0.0
        return count, window - (now - start)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)
        self._slots.pop(key, None)

    async def reserve(self, key: str, interval: float, window: float,
                      max_wait: float) -> float:
        now = self.clock.monotonic()
        free, _ = self._slots.get(key, (now, now))
        free = max(free, now)
        if free - now > max_wait:
            return free - now
        self._slots[key] = (free + interval, now + window)
        if len(self._slots) > 100_000:
            self._slots = {k: v for k, v in self._slots.items() if v[1] > now}
        return free - now


_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
if free - now <= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], free + tonumber(ARGV[1]), 'PX', tonumber(ARGV[2]))
end
return free - now
"""


class RedisCounter:
    def __init__(self, redis, prefix: str = "rl:"):
        self.redis = redis
        self.prefix = prefix

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        k = self.prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(k)
            pipe.pexpire(k, math.ceil(window * 1000), nx=True)
            pipe.pttl(k)
            count, _, ttl = await pipe.execute()
        return int(count), max(ttl, 0) / 1000

    async def peek(self, key: str, window: float) -> tuple[int, float]:
        k = self.prefix + key
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(k)
            pipe.pttl(k)
            count, ttl = await pipe.execute()
        return int(count or 0), max(ttl, 0) / 1000

    async def reset(self, key: str) -> None:
        await self.redis.delete(self.prefix + key, self.prefix + "slot:" + key)

    async def reserve(self, key: str, interval: float, window: float,
                      max_wait: float) -> float:
        # One script: read the next free slot and move it on atomically, in Redis' own time
        # so every instance queues on the same clock.
        wait = await self.redis.eval(_RESERVE, 1, self.prefix + "slot:" + key,
                                     math.ceil(interval * 1000), math.ceil(window * 1000),
                                     math.ceil(max_wait * 1000))
        return int(wait) / 1000


class TokenBucket:
    """Per-socket limiter for the ephemeral broadcast path: local, no I/O. Without a
    ``clock`` it reads the system clock."""

    __slots__ = ("rate", "capacity", "tokens", "stamp", "clock")

    def __init__(self, rate: float, capacity: int, clock: Clock | None = None):
        self.rate, self.capacity = rate, capacity
        self.clock = clock or SystemClock()
        self.tokens, self.stamp = float(capacity), self.clock.monotonic()

    def full(self) -> bool:
        now = self.clock.monotonic()
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity

    def refund(self) -> None:
        """Give back the token of an event refused after all."""
        self.tokens = min(self.capacity, self.tokens + 1)

    def take(self) -> float:
        """0 when allowed, else seconds until a token is available."""
        now = self.clock.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class EventLimiter(Protocol):
    """Per-user token buckets for events, one per event class (``services/event_limits``)."""

    async def take(self, key: str, rate: float, burst: int) -> float:
        """0 when allowed, else seconds until the next event of ``key`` would be."""
        ...


class MemoryEventLimiter:
    """The embedded default: buckets in this process."""

    def __init__(self, clock: Clock, max_keys: int = 100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str, rate: float, burst: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:  # forget the full (idle) buckets
                for k in [k for k, b in self._buckets.items() if b.full()]:
                    del self._buckets[k]
            bucket = self._buckets[key] = TokenBucket(rate, burst, self.clock)
        return bucket

    async def take(self, key: str, rate: float, burst: int) -> float:
        return self.bucket(key, rate, burst).take()


# GCRA (the generic cell rate algorithm): one key per bucket holding the theoretical arrival
# time, in Redis' own clock so every instance shares the bucket. Answers {wait, left}: the
# microseconds until the event would be allowed (0: taken) and the events still allowed
# now. ``force`` counts an event some instance already let through, even past the budget
# (the bucket is then spent, not overdrawn).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - interval * burst
if wait > 0 then
  if ARGV[3] ~= '1' then return {wait, 0} end
  new_tat = now + interval * burst
  wait = 0
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {0, math.floor((now + interval * burst - new_tat) / interval)}
"""


class RedisEventLimiter:
    """Buckets shared by every instance, without a Redis round trip before most events.

    Every event is taken from this instance's own bucket first (``local``): it sees only
    this instance's share of the user's events, so it refuses only what the shared bucket
    would refuse too. While the shared bucket was at least half full at its last answer,
    the event goes on at once and is counted in the shared bucket in the background; once
    it is less than half full (a user spending from several instances at once) each event
    waits for the shared bucket's answer until it has refilled to half, so the budget holds
    across instances exactly but for the events let through before an answer came back
    (one or two per instance, at a user's first events on it). A key's background counts
    reach Redis before its next exact check from this instance.

    While Redis is unreachable each instance keeps to its own buckets: a budget is a
    protection, and the store keeps serving meanwhile (an outage must not turn every event
    into ``unavailable``).
    """

    def __init__(self, redis, local: MemoryEventLimiter, clock: Clock,
                 prefix: str = "rl:ev:", max_keys: int = 100_000):
        self.prefix = prefix
        self.local = local
        self.clock = clock
        self.max_keys = max_keys
        self._script = redis.register_script(_GCRA)
        self._exact_until: dict[str, float] = {}  # key -> monotonic time
        self._counting: dict[str, asyncio.Task] = {}  # key -> its newest background count

    async def take(self, key: str, rate: float, burst: int) -> float:
        bucket = self.local.bucket(key, rate, burst)
        wait = bucket.take()
        if wait > 0:
            return wait
        now = self.clock.monotonic()
        if bucket.tokens >= burst / 2 and self._exact_until.get(key, now) <= now:
            task = asyncio.ensure_future(self._count(key, rate, burst,
                                                     self._counting.get(key)))
            self._counting[key] = task
            task.add_done_callback(lambda t: self._counting.get(key) is t
                                   and self._counting.pop(key))
            return 0.0
        counting = self._counting.get(key)
        if counting is not None:
            await asyncio.wait({counting})
        wait = await self._shared(key, rate, burst, force=False)
        if wait > 0:
            bucket.refund()
        return wait

    async def _count(self, key: str, rate: float, burst: int,
                     previous: asyncio.Task | None) -> None:
        """Count an event let through in the shared bucket, after the key's previous count
        (so the newest count done means all of them are)."""
        if previous is not None:
            await asyncio.wait({previous})
        await self._shared(key, rate, burst, force=True)

    async def _shared(self, key: str, rate: float, burst: int, *, force: bool) -> float:
        """Take from the shared bucket (``force``: count it whatever it says) and note
        whether the key's next events must ask it first; the wait it answers (0 when Redis
        failed: this instance's bucket has decided)."""
        interval = math.ceil(1_000_000 / rate)
        try:
            wait, left = await self._script(keys=[self.prefix + key],
                                            args=[interval, burst, int(force)])
        except (RedisError, OSError):
            return 0.0
        short = math.ceil(burst / 2) - int(left)
        if short > 0:
            if len(self._exact_until) >= self.max_keys:
                now = self.clock.monotonic()
                self._exact_until = {k: t for k, t in self._exact_until.items() if t > now}
            self._exact_until[key] = self.clock.monotonic() + short * interval / 1_000_000
        else:
            self._exact_until.pop(key, None)
        return 0.0 if force else int(wait) / 1_000_000
