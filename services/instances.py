"""Which instances are up, how many sockets each holds and who is online across all of
them (``admin:metrics``). With Redis every instance writes a heartbeat (a hash field) and the
set of its signed-in users (a key that expires unless renewed) every ``interval`` seconds;
embedded, the one instance answers from memory."""
from __future__ import annotations

import contextlib
import json
import logging
import secrets

from services.background import Background, every
from services.clock import Clock
from services.gateway import Gateway

log = logging.getLogger("services.instances")
HEARTBEATS = "collab:instances"


class InstanceRegistry:
    def __init__(self, gateway: Gateway, clock: Clock, instance_id: str, redis=None,
                 interval: float = 5.0):
        self.gateway, self.clock, self.redis = gateway, clock, redis
        self.instance_id = instance_id
        self.interval = interval
        self.started_at = clock.time()
        self._loop = Background("instance-beat")

    def _here(self) -> dict:
        return {"id": self.instance_id, "sockets": len(self.gateway.sockets),
                "startedAt": self.started_at, "beatAt": self.clock.time()}

    def _users_here(self) -> set[str]:
        return {s.user_id for s in self.gateway.sockets.values() if s.user_id}

    async def start(self) -> None:
        if self.redis is not None:
            self._loop.start(lambda: every(self.clock, self.interval, self.beat, log,
                                           "instance heartbeat"))

    async def stop(self) -> None:
        if self._loop.running:
            await self._loop.stop()
            with contextlib.suppress(Exception):  # leave at once rather than by expiry
                await self.redis.hdel(HEARTBEATS, self.instance_id)
                await self.redis.delete(self._online_key(self.instance_id))

    @staticmethod
    def _online_key(instance_id: str) -> str:
        return f"collab:online:{instance_id}"

    async def beat(self) -> None:
        assert self.redis is not None
        key = self._online_key(self.instance_id)
        fresh = f"{key}:{secrets.token_hex(4)}"
        users = list(self._users_here())
        ttl = max(1, round(self.interval * 3))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(HEARTBEATS, self.instance_id, json.dumps(self._here()))
            if users:
                pipe.sadd(fresh, *users)
                pipe.expire(fresh, ttl)
                pipe.rename(fresh, key)  # the whole set at once: no moment half-written
            else:
                pipe.delete(key)
            await pipe.execute()

    async def snapshot(self) -> tuple[list[dict], int]:
        """The live instances (oldest first) and the distinct users signed in on any."""
        if self.redis is None:
            here = self._here()
            return [{k: here[k] for k in ("id", "sockets", "startedAt")}], \
                len(self._users_here())
        now = self.clock.time()
        live = []
        for raw in (await self.redis.hgetall(HEARTBEATS)).values():
            try:
                beat = json.loads(raw)
            except ValueError:
                continue
            if now - float(beat.get("beatAt", 0)) <= self.interval * 3:
                live.append({k: beat[k] for k in ("id", "sockets", "startedAt")})
        live.sort(key=lambda b: (b["startedAt"], b["id"]))
        keys = [self._online_key(b["id"]) for b in live]
        online = 0
        if keys:
            union = f"collab:online-union:{secrets.token_hex(6)}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.sunionstore(union, keys)
                pipe.delete(union)
                online, _ = await pipe.execute()
        return live, int(online)
