"""Safe retries: a mutating call repeated with the same ``requestId`` by the same user within
REPLAY_WINDOW_S gets the first call's ack and changes nothing, on any instance
(docs/DELIVERY.md). A client whose ack was lost to a disconnect cannot tell whether its call
ran; with this it simply sends it again.

The first call leaves a marker (``pending``) while it runs, then its ack. A repeat meanwhile
is told to retry shortly (``conflict``, ``inProgress``): waiting for the first would tie up a
handler for as long as the first takes. Acks of calls whose outcome is unknown or that never
ran (``internal``, ``unavailable``, ``rate_limited``, …) are not kept: a retry runs the call.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

from services.clock import Clock
from services.redis_client import OutageLog
from store.errors import EventError, Unavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("services.idempotency")
# A marker outlives a call that never finishes (its instance died) by this much at most.
PENDING_TTL_S = 60
RETRY_AFTER_MS = 500
# Outcomes after which the call may not have run, or ran without effect a retry could not
# have: their acks are forgotten, so a retry runs the call.
NOT_KEPT = frozenset({"internal", "unavailable", "rate_limited", "token_expired",
                      "unauthorized"})


class Ledger(Protocol):
    async def claim(self, key: str, value: str, ttl_s: float) -> str | None:
        """Set ``key`` to ``value`` unless it exists; None when set, else what it holds."""

    async def put(self, key: str, value: str, ttl_s: float) -> None: ...

    async def drop(self, key: str) -> None: ...


class MemoryLedger:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.items: dict[str, tuple[float, str]] = {}
        self._swept = clock.time()

    def _live(self, key: str) -> str | None:
        item = self.items.get(key)
        if item is None or item[0] <= self.clock.time():
            self.items.pop(key, None)
            return None
        return item[1]

    async def claim(self, key: str, value: str, ttl_s: float) -> str | None:
        now = self.clock.time()
        if now - self._swept > PENDING_TTL_S:
            self._swept = now
            self.items = {k: v for k, v in self.items.items() if v[0] > now}
        held = self._live(key)
        if held is None:
            self.items[key] = (now + ttl_s, value)
        return held

    async def put(self, key: str, value: str, ttl_s: float) -> None:
        self.items[key] = (self.clock.time() + ttl_s, value)

    async def drop(self, key: str) -> None:
        self.items.pop(key, None)


class RedisLedger:
    """Shared by every instance; while Redis is unreachable, this instance's memory (a retry
    reaching another instance then runs again: said in the outage log line)."""

    def __init__(self, redis: Redis, fallback: MemoryLedger):
        self.redis, self.fallback = redis, fallback
        self._outage = OutageLog(log, "request ids (retries deduplicated per instance)")

    async def claim(self, key: str, value: str, ttl_s: float) -> str | None:
        try:
            if await self.redis.set(key, value, nx=True, ex=max(1, round(ttl_s))):
                self._outage.ok()
                return None
            held = await self.redis.get(key)
        except (RedisError, Unavailable) as exc:
            self._outage.failed(exc)
            return await self.fallback.claim(key, value, ttl_s)
        return held.decode() if isinstance(held, bytes) else held

    async def put(self, key: str, value: str, ttl_s: float) -> None:
        try:
            await self.redis.set(key, value, ex=max(1, round(ttl_s)))
        except (RedisError, Unavailable) as exc:
            self._outage.failed(exc)
            await self.fallback.put(key, value, ttl_s)

    async def drop(self, key: str) -> None:
        try:
            await self.redis.delete(key)
        except (RedisError, Unavailable) as exc:
            self._outage.failed(exc)
        await self.fallback.drop(key)


class Requests:
    """``begin`` before a call with a ``requestId``; ``end`` with its ack envelope."""

    def __init__(self, ledger: Ledger, window_s: float, prefix: str = "collab:request:"):
        self.ledger, self.window_s, self.prefix = ledger, window_s, prefix

    def _key(self, user_id: str, request_id: str) -> str:
        return f"{self.prefix}{user_id}:{request_id}"

    async def begin(self, user_id: str, request_id: str, event: str) -> dict | None:
        """None: this is the first call, run it. Else the first call's ack envelope."""
        held = await self.ledger.claim(self._key(user_id, request_id),
                                       json.dumps({"event": event, "pending": True}),
                                       min(PENDING_TTL_S, self.window_s))
        if held is None:
            return None
        first = json.loads(held)
        if first.get("event") != event:
            raise EventError("bad_request", f"requestId {request_id!r} was used for "
                             f"{first.get('event')}; use a new one for each call",
                             {"requestId": request_id})
        if first.get("pending"):
            raise EventError("conflict", "the first call with this requestId is still "
                             "running; retry shortly",
                             {"requestId": request_id, "inProgress": True,
                              "retryAfterMs": RETRY_AFTER_MS})
        return first["ack"]

    async def forget(self, user_id: str, request_id: str) -> None:
        """The call did not finish (it raised): a retry runs it."""
        await self.ledger.drop(self._key(user_id, request_id))

    async def end(self, user_id: str, request_id: str, event: str, ack: dict) -> None:
        key = self._key(user_id, request_id)
        code = None if ack.get("ok") else ack.get("error", {}).get("code")
        try:
            if code in NOT_KEPT:
                await self.ledger.drop(key)
            else:
                await self.ledger.put(key, json.dumps({"event": event, "ack": ack}),
                                      self.window_s)
        except Exception:  # the call's own ack still goes out
            log.exception("could not keep the ack of request %s", request_id)
