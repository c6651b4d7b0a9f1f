"""Who is in which project room, across every instance.

Embedded: a dict. With Redis: one hash per project (``{instance}|{sid}`` → user), each
instance beating into a sorted set; users of an instance that stops beating for
PRESENCE_TTL_S are filtered out at once and reaped by whichever live instance removes
the dead one from the set first (ZREM answers 1 to exactly one caller).

This instance's own entries are also kept here (``local``), and that copy is the truth for
them: when Redis could not be written (an outage) or forgot them (a restart without
persistence, or a long pause that got us reaped), the next beat that reaches Redis writes
them again, removes the entries of sockets that left meanwhile, and reports the projects so
their presence is pushed again. A socket leaving during an outage therefore never fails: only
joining answers ``unavailable``.
"""
from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod

from services.clock import Clock
from store.errors import Unavailable

log = logging.getLogger("services.presence")
INSTANCES = "presence:instances"


def _distinct(users) -> list[dict]:
    seen: dict[str, dict] = {}
    for user in users:
        seen.setdefault(user["userId"], user)
    return sorted(seen.values(), key=lambda u: (u["username"].lower(), u["userId"]))


class Presence(ABC):
    def __init__(self):
        # sid -> (user, project ids): what this instance has put in (a tuple, not a set: a
        # server holds one per socket).
        self.local: dict[str, tuple[dict, tuple[str, ...]]] = {}
        # project -> user id -> [user, how many of our sockets]: who is here, counted once;
        # a user's second tab coming or going changes nobody's list and is not pushed.
        self._people: dict[str, dict[str, list]] = {}
        # Set when a write to the shared view failed: the next beat rewrites our entries.
        self._resync = False
        self._gone: set[tuple[str, str]] = set()  # (project, sid) left while unwritable
        self._unpushed: set[str] = set()  # projects whose presence push was skipped

    async def join(self, project_id: str, sid: str, user: dict) -> bool:
        """Whether the project's list of users may have changed (to push it): not when the
        user already had a socket of ours in the project."""
        user, projects = self.local.get(sid) or (user, ())
        first = False
        if project_id not in projects:
            self.local[sid] = (user, (*projects, project_id))
            first = self._count(project_id, user, +1)
        self._gone.discard((project_id, sid))
        try:
            await self._put(project_id, sid, user)
        except Unavailable:
            self._resync = True
            raise
        return first

    async def leave(self, project_id: str, sid: str) -> bool:
        """Whether the list may have changed and is to be pushed now (a removal Redis did
        not take is pushed by the beat that makes it)."""
        user, projects = self.local.get(sid) or ({}, ())
        last = False
        if project_id in projects:
            rest = tuple(p for p in projects if p != project_id)
            if rest:
                self.local[sid] = (user, rest)
            else:
                del self.local[sid]  # signed out, say: the socket may sign in as another user
            last = self._count(project_id, user, -1)
        return await self._remove_or_defer(project_id, sid) and last

    async def drop_socket(self, sid: str) -> set[str]:
        """Remove a disconnected socket everywhere; returns the projects whose list changed
        (the user's last socket of ours there) and is to be pushed now."""
        user, projects = self.local.pop(sid, ({}, ()))
        changed = set()
        for pid in projects:
            last = self._count(pid, user, -1)
            if await self._remove_or_defer(pid, sid) and last:
                changed.add(pid)
        return changed

    def _count(self, project_id: str, user: dict, step: int) -> bool:
        """Count a socket of ``user`` in or out; whether they came or went with it."""
        people = self._people.setdefault(project_id, {})
        entry = people.get(user["userId"])
        if entry is None:
            if step < 0:
                return False
            people[user["userId"]] = [user, 1]
            return True
        entry[1] += step
        if entry[1] > 0:
            return False
        del people[user["userId"]]
        if not people:
            del self._people[project_id]
        return True

    async def _remove_or_defer(self, project_id: str, sid: str) -> bool:
        try:
            await self._remove(project_id, sid)
            return True
        except Unavailable:
            self._gone.add((project_id, sid))
            self._resync = True
            self._unpushed.add(project_id)
            return False

    def push_later(self, project_id: str) -> None:
        """A presence push could not be made: the next beat that reaches Redis reports it."""
        self._unpushed.add(project_id)

    def local_projects(self) -> set[str]:
        return set(self._people)

    def _local_entries(self, project_id: str) -> list[tuple[str, dict]]:
        return [(sid, user) for sid, (user, projects) in self.local.items()
                if project_id in projects]

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
    """One instance: every socket is local, so the local counts are the whole truth."""

    def __init__(self):
        super().__init__()
        self.rooms: dict[str, dict[str, str]] = {}  # project -> sid -> user id

    async def _put(self, project_id, sid, user):
        self.rooms.setdefault(project_id, {})[sid] = user["userId"]

    async def _remove(self, project_id, sid):
        room = self.rooms.get(project_id)
        if room is not None:
            room.pop(sid, None)
            if not room:
                del self.rooms[project_id]

    async def users(self, project_id):
        # Per user, not per socket: a join in a room of thousands of tabs stays cheap.
        return _distinct(user for user, _ in self._people.get(project_id, {}).values())

    async def sockets(self, project_id):
        return list(self.rooms.get(project_id, {}).items())


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
        await self._write([(project_id, sid, user)], [])

    async def _write(self, puts: list[tuple[str, str, dict]],
                     removals: list[tuple[str, str]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for project_id, sid, user in puts:
                pipe.hset(f"presence:{project_id}", self._field(sid), json.dumps(user))
                pipe.sadd(f"presence:inst:{self.iid}", project_id)
            for project_id, sid in removals:
                pipe.hdel(f"presence:{project_id}", self._field(sid))
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
        try:
            entries = await self._live_entries(project_id)
        except Unavailable:
            # Pushes to other instances cannot leave during an outage anyway: route to ours.
            entries = self._local_entries(project_id)
        return [(sid, user["userId"]) for sid, user in entries]

    async def beat(self) -> set[str]:
        now = self.clock.time()
        changed: set[str] = set()
        resync = self._resync
        self._resync = False
        try:
            if await self.redis.zadd(INSTANCES, {self.iid: now}):
                resync = True  # we were reaped during a pause, or Redis lost its data
            if resync:
                changed |= await self._rewrite()
            for dead in await self.redis.zrangebyscore(INSTANCES, "-inf", now - self.ttl):
                dead = dead.decode()
                if dead == self.iid or not await self.redis.zrem(INSTANCES, dead):
                    continue  # another instance is reaping it
                changed |= await self._purge(dead)
        except Unavailable:
            self._resync = self._resync or resync
            raise
        changed |= self._unpushed
        self._unpushed = set()
        return changed

    async def _rewrite(self) -> set[str]:
        """Put back every entry of ours and drop those of sockets that left meanwhile."""
        gone = set(self._gone)
        puts = [(pid, sid, user) for sid, (user, projects) in self.local.items()
                for pid in projects]
        await self._write(puts, sorted(gone))
        self._gone -= gone
        # A socket that left while the pipeline was on its way may have been put back.
        stale = [(pid, sid) for pid, sid, _ in puts
                 if pid not in self.local.get(sid, (None, ()))[1]]
        if stale:
            await self._write([], stale)
        return {pid for pid, _, _ in puts} | {pid for pid, _ in gone}

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
        try:
            await self.redis.zrem(INSTANCES, self.iid)
            await self.redis.delete(f"presence:inst:{self.iid}")
        except Unavailable:
            pass  # our entries are filtered out PRESENCE_TTL_S after our last beat
        return projects
