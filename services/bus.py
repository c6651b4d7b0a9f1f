"""Control messages between instances (not client pushes: those go through the
Socket.IO manager). Used where one instance must make another act on its own sockets,
e.g. take a removed member's sockets out of a project room."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("services.bus")
Listener = Callable[[dict], Awaitable[None]]
CHANNEL = "collab:bus"


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

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class RedisBus(Bus):
    def __init__(self, redis):
        super().__init__()
        self.redis = redis
        self._task: asyncio.Task | None = None

    async def publish(self, kind: str, data: dict) -> None:
        await self.redis.publish(CHANNEL, json.dumps({"kind": kind, "data": data}))

    async def start(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        self._task = asyncio.create_task(self._listen(pubsub), name="bus-listener")

    async def _listen(self, pubsub) -> None:
        try:
            while True:
                try:
                    msg = await pubsub.get_message(timeout=5.0)
                except (ConnectionError, OSError):
                    log.warning("bus: redis connection lost, resubscribing")
                    await asyncio.sleep(1)
                    continue
                if msg is None:
                    continue
                try:
                    body = json.loads(msg["data"])
                except (ValueError, TypeError):
                    continue
                await self._deliver(body.get("kind", ""), body.get("data") or {})
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
