"""Control messages between instances (not client pushes: those go through the
Socket.IO manager). Used where one instance must make another act on its own sockets,
e.g. take a removed member's sockets out of a project room.

A message is delivered to this instance's listeners at once, then to the others. With Redis
it travels on a stream, not pub/sub, so it is not lost to an outage: a message published
while Redis is unreachable waits in a bounded outbox and is added when Redis answers again,
and each instance reads on from the last entry it saw, so whatever was added while its own
connection was down reaches it when it is back.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

log = logging.getLogger("services.bus")
Listener = Callable[[dict], Awaitable[None]]
STREAM = "collab:bus"
STREAM_MAXLEN = 10_000  # entries kept (approximately): far more than an outage produces
OUTBOX_LIMIT = 10_000
BLOCK_MS = 2_000  # below the client's socket timeout
RETRY_MIN_S, RETRY_MAX_S = 0.25, 2.0


class Bus:
    def __init__(self):
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, kind: str, listener: Listener) -> None:
        self._listeners.setdefault(kind, []).append(listener)

    async def publish(self, kind: str, data: dict) -> None:
        await self._deliver(kind, data)

    async def _deliver(self, kind: str, data: dict) -> None:
        for listener in self._listeners.get(kind, ()):
            try:
                await listener(data)
            except Exception:
                log.exception("bus listener for %s failed", kind)

    @property
    def listening(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class RedisBus(Bus):
    def __init__(self, redis):
        super().__init__()
        self.redis = redis
        # Unique per process start: our own entries are skipped when read back.
        self.origin = secrets.token_hex(8)
        self._outbox: deque[dict[str, str]] = deque()
        self._last_id = "0-0"
        self._listening = False
        self._task: asyncio.Task | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    async def publish(self, kind: str, data: dict) -> None:
        await self._deliver(kind, data)
        entry = {"kind": kind, "data": json.dumps(data), "origin": self.origin}
        if not self._outbox:
            try:
                await self._add(entry)
                return
            except RedisError:
                log.warning("bus: redis unreachable, %s waits in the outbox", kind)
        if len(self._outbox) >= OUTBOX_LIMIT:
            dropped = self._outbox.popleft()
            log.error("bus: outbox full, dropped %s", dropped["kind"])
        self._outbox.append(entry)

    async def _add(self, entry: dict[str, str]) -> None:
        await self.redis.xadd(STREAM, entry, maxlen=STREAM_MAXLEN, approximate=True)

    async def start(self) -> None:
        # Read on from the newest entry now there: older ones were for instances before us.
        newest = await self.redis.xrevrange(STREAM, count=1)
        if newest:
            self._last_id = newest[0][0]
        self._listening = True
        self._task = asyncio.create_task(self._listen(), name="bus-listener")

    async def _listen(self) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                if not self._listening:
                    await self.redis.ping()
                    log.warning("bus: redis answers again")
                    self._listening, delay = True, RETRY_MIN_S
                while self._outbox:  # in order, before anything published after them
                    await self._add(self._outbox[0])
                    self._outbox.popleft()
                await self._read()
            except RedisError as exc:
                if self._listening:
                    log.warning("bus: lost redis, retrying", extra={"fields": {"error": str(exc)}})
                self._listening = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _read(self) -> None:
        reply = await self.redis.xread({STREAM: self._last_id}, count=100, block=BLOCK_MS)
        for _, entries in reply or ():
            for entry_id, fields in entries:
                self._last_id = entry_id
                if fields.get(b"origin", b"").decode() == self.origin:
                    continue
                try:
                    kind, data = fields[b"kind"].decode(), json.loads(fields[b"data"])
                except (KeyError, ValueError):
                    continue
                await self._deliver(kind, data if isinstance(data, dict) else {})

    async def close(self) -> None:
        # A cancel can be swallowed by redis-py during a blocking read (the loop then goes on
        # to the next read): cancel again until the task has ended.
        while self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.5)
