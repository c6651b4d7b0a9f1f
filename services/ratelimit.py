"""Fixed-window counters and slot reservations for sign-in and sign-up limits, shared by
all instances through Redis."""
from __future__ import annotations

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

    async def take(self, key: str, rate: float, burst: int) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:  # forget the full (idle) buckets
                for k in [k for k, b in self._buckets.items() if b.full()]:
                    del self._buckets[k]
            bucket = self._buckets[key] = TokenBucket(rate, burst, self.clock)
        return bucket.take()


# GCRA (the generic cell rate algorithm): one key per bucket holding the theoretical arrival
# time, in Redis' own clock so every instance shares the bucket.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - interval * burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
"""


class RedisEventLimiter:
    """Buckets shared by every instance. While Redis is unreachable each instance falls back
    to buckets of its own: a budget is a protection, and the store keeps serving meanwhile
    (an outage must not turn every event into ``unavailable``)."""

    def __init__(self, redis, fallback: EventLimiter, prefix: str = "rl:ev:"):
        self.prefix = prefix
        self.fallback = fallback
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, rate: float, burst: int) -> float:
        try:
            wait = await self._script(keys=[self.prefix + key],
                                      args=[math.ceil(1_000_000 / rate), burst])
        except (RedisError, OSError):
            return await self.fallback.take(key, rate, burst)
        return int(wait) / 1_000_000
