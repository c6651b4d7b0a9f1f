"""Who is in which project room, across every instance.

Embedded: a dict. With Redis: one hash per project (``{instance}|{sid}`` → user), each
instance beating into a sorted set; users of an instance that stops beating for
PRESENCE_TTL_S are filtered out at once and reaped by whichever live instance removes
the dead one from the set first (ZREM answers 1 to exactly one caller).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod

from services.clock import Clock

INSTANCES = "presence:instances"


def _distinct(users) -> list[dict]:
    seen: dict[str, dict] = {}
    for user in users:
        seen.setdefault(user["userId"], user)
    return sorted(seen.values(), key=lambda u: (u["username"].lower(), u["userId"]))


class Presence(ABC):
    def __init__(self):
        # sid -> (user, {project ids}): what this instance has put in, to re-put it if the
        # cluster ever reaped us while we were alive (a long pause) and to clean on exit.
        self.local: dict[str, tuple[dict, set[str]]] = {}

    async def join(self, project_id: str, sid: str, user: dict) -> None:
        self.local.setdefault(sid, (user, set()))[1].add(project_id)
        await self._put(project_id, sid, user)

    async def leave(self, project_id: str, sid: str) -> None:
        entry = self.local.get(sid)
        if entry:
            entry[1].discard(project_id)
        await self._remove(project_id, sid)

    async def drop_socket(self, sid: str) -> set[str]:
        """Remove a disconnected socket everywhere; returns the projects it was in."""
        _, projects = self.local.pop(sid, (None, set()))
        for pid in projects:
            await self._remove(pid, sid)
        return projects

    @abstractmethod
    async def users(self, project_id: str) -> list[dict]: ...

    @abstractmethod
    async def sockets(self, project_id: str) -> list[tuple[str, str]]:
        """(sid, user id) of every live socket in the project, on every instance."""

    @abstractmethod
    async def _put(self, project_id: str, sid: str, user: dict) -> None: ...

    @abstractmethod
    async def _remove(self, project_id: str, sid: str) -> None: ...

    async def beat(self) -> set[str]:
        """Periodic liveness work; returns projects whose presence changed."""
        return set()

    async def close(self) -> set[str]:
        projects = set()
        for sid in list(self.local):
            projects |= await self.drop_socket(sid)
        return projects


class MemoryPresence(Presence):
    def __init__(self):
        super().__init__()
        self.rooms: dict[str, dict[str, dict]] = {}

    async def _put(self, project_id, sid, user):
        self.rooms.setdefault(project_id, {})[sid] = user

    async def _remove(self, project_id, sid):
        room = self.rooms.get(project_id)
        if room is not None:
            room.pop(sid, None)
            if not room:
                del self.rooms[project_id]

    async def users(self, project_id):
        return _distinct(self.rooms.get(project_id, {}).values())

    async def sockets(self, project_id):
        return [(sid, user["userId"]) for sid, user in self.rooms.get(project_id, {}).items()]


class RedisPresence(Presence):
    def __init__(self, redis, instance_id: str, ttl: float, clock: Clock):
        super().__init__()
        self.clock = clock
        self.redis = redis
        self.iid = instance_id
        self.ttl = ttl

    def _field(self, sid: str) -> str:
        return f"{self.iid}|{sid}"

    async def _put(self, project_id, sid, user):
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(f"presence:{project_id}", self._field(sid), json.dumps(user))
            pipe.sadd(f"presence:inst:{self.iid}", project_id)
            pipe.zadd(INSTANCES, {self.iid: self.clock.time()})
            await pipe.execute()

    async def _remove(self, project_id, sid):
        await self.redis.hdel(f"presence:{project_id}", self._field(sid))

    async def _live_entries(self, project_id) -> list[tuple[str, dict]]:
        entries = await self.redis.hgetall(f"presence:{project_id}")
        if not entries:
            return []
        split = [(k.decode().split("|", 1), v) for k, v in entries.items()]
        owners = sorted({iid for (iid, _), _ in split})
        scores = await self.redis.zmscore(INSTANCES, owners)
        cutoff = self.clock.time() - self.ttl
        alive = {iid for iid, score in zip(owners, scores) if score is not None and score > cutoff}
        return [(sid, json.loads(v)) for (iid, sid), v in split if iid in alive]

    async def users(self, project_id):
        return _distinct(user for _, user in await self._live_entries(project_id))

    async def sockets(self, project_id):
        return [(sid, user["userId"]) for sid, user in await self._live_entries(project_id)]

    async def beat(self) -> set[str]:
        now = self.clock.time()
        added = await self.redis.zadd(INSTANCES, {self.iid: now})
        changed: set[str] = set()
        if added:  # we had been reaped during a pause: put our sockets back
            for sid, (user, projects) in list(self.local.items()):
                for pid in projects:
                    await self._put(pid, sid, user)
                    changed.add(pid)
        for dead in await self.redis.zrangebyscore(INSTANCES, "-inf", now - self.ttl):
            dead = dead.decode()
            if dead == self.iid or not await self.redis.zrem(INSTANCES, dead):
                continue  # another instance is reaping it
            changed |= await self._purge(dead)
        return changed

    async def _purge(self, iid: str) -> set[str]:
        key = f"presence:inst:{iid}"
        projects = {p.decode() for p in await self.redis.smembers(key)}
        prefix = f"{iid}|".encode()
        for pid in projects:
            fields = [f for f in await self.redis.hkeys(f"presence:{pid}") if f.startswith(prefix)]
            if fields:
                await self.redis.hdel(f"presence:{pid}", *fields)
        await self.redis.delete(key)
        return projects

    async def close(self) -> set[str]:
        projects = await super().close()
        await self.redis.zrem(INSTANCES, self.iid)
        await self.redis.delete(f"presence:inst:{self.iid}")
        return projects
