"""Row locks that hold across instances (SPEC "Collaborative tables").

- ``acquire`` grants one holder per row; others get ``locked`` with the holder's name; a user
  whose lock timed out or was broken waits LOCK_COOLDOWN_S (``rate_limited``).
- The holder's activity (update, heartbeat) moves the edit deadline (LOCK_EDIT_TIMEOUT_S).
- The owning instance renews a short lease (LOCK_LEASE_S) while the holder's socket is
  connected or within the disconnect grace (LOCK_GRACE_S); if the instance dies the lease
  lapses and the lock is free.
- One elected reaper (a leader lease) deletes expired locks and broadcasts ``row:unlocked``.
- Redis down: acquiring answers ``unavailable``; leases cannot be renewed, but nobody can
  take a row either. Redis back empty (no persistence): each owner's next renewal puts its
  locks back (backends.py, "epoch"), so holders and rooms carry on as before.
- Tokens fence writes: an update must carry the current token; the store's version check
  refuses a stale writer even if this service lost a lock.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.clock import Clock, Timer
from services.container import Hooks
from services.leader import Leader
from services.locks.backends import LockBackend, MemoryLocks, RedisLocks
from services.redis_client import OutageLog
from store.errors import Conflict, Locked, RateLimited, Unavailable
from store.ids import iso

log = logging.getLogger("services.locks")
Push = Callable[[str, str, dict], Awaitable[None]]  # (project_id, event, data)

__all__ = ["LockService", "MemoryLocks", "RedisLocks"]


def _iso(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


def holder_view(info: dict) -> dict:
    return {"tableId": info["tableId"], "rowId": info["rowId"], "userId": info["userId"],
            "username": info["username"], "expiresAt": _iso(info["deadline"])}


@dataclass
class Owned:
    """A lock this instance granted: the record as last written, to renew (or put back)."""

    record: dict
    epoch: str
    grace: Timer | None = None

    @property
    def token(self) -> str:
        return self.record["token"]

    @property
    def sid(self) -> str:
        return self.record["sid"]


class LockService:
    def __init__(self, backend: LockBackend, *, clock: Clock, push: Push, leader: Leader,
                 instance_id: str, edit_timeout: float, cooldown: float, lease: float,
                 grace: float):
        self.backend = backend
        self.clock = clock
        self.push = push
        self.leader = leader
        self.instance_id = instance_id
        self.edit_timeout = edit_timeout
        self.cooldown = cooldown
        self.lease = lease
        self.grace = grace
        self.owned: dict[tuple[str, str], Owned] = {}
        self._tasks: list[asyncio.Task] = []

    # -- the operations handlers call -------------------------------------------------------

    async def acquire(self, *, project_id: str, table_id: str, row_id: str, user_id: str,
                      username: str, sid: str) -> dict:
        now = self.clock.time()
        info: dict = {"token": secrets.token_urlsafe(18), "tableId": table_id, "rowId": row_id,
                "projectId": project_id, "userId": user_id, "username": username, "sid": sid,
                "instance": self.instance_id, "deadline": now + self.edit_timeout,
                "leaseUntil": now + self.lease, "since": now}
        kind, payload, epoch = await self.backend.acquire(info, now)
        if kind == "cooldown":
            assert isinstance(payload, float | int)
            raise RateLimited(f"you can lock this row again in {payload:.1f} s",
                              {"retryAfter": round(payload, 2)})
        assert payload is None or isinstance(payload, dict)  # a lock record from here on
        if kind == "locked":
            assert payload is not None
            raise Locked(f"row is locked by {payload['username']}",
                         {"holder": holder_view(payload)})
        if kind == "ok" and payload:
            # The previous holder's lock had lapsed but the reaper had not seen it yet: tell
            # the room it ended before saying who holds the row now.
            await self._ended(payload, "timeout" if payload["deadline"] <= now else "disconnect")
        if kind == "mine" and payload is not None:  # the same user reclaiming (a reconnect)
            info = payload
            old = self.owned.pop((table_id, row_id), None)
            if old and old.grace:
                old.grace.cancel()
        self.owned[(table_id, row_id)] = Owned(info, epoch)
        if kind == "ok":
            await self.push(project_id, "row:locked", holder_view(info))
        return info

    async def check_write(self, table_id: str, row_id: str, user_id: str,
                          token: str | None) -> dict | None:
        """Raise unless this write may go ahead; returns the caller's live lock, if any."""
        current = await self.backend.get(table_id, row_id, self.clock.time())
        if token is not None:
            if current is None or current["token"] != token:
                raise Conflict("your lock on this row is gone (expired or broken): lock it again",
                               {"reason": "stale_lock"})
            return current
        if current is not None and current["userId"] != user_id:
            raise Locked(f"row is locked by {current['username']}",
                         {"holder": holder_view(current)})
        return current

    async def touch(self, table_id: str, row_id: str, token: str) -> dict | None:
        """Activity by the holder: push the edit deadline out again."""
        now = self.clock.time()
        info = await self.backend.extend(table_id, row_id, token, now, now + self.lease,
                                         now + self.edit_timeout)
        owned = self.owned.get((table_id, row_id))
        if info is not None and owned is not None and owned.token == token:
            owned.record = info  # the moved deadline, should the lock ever be put back
        return info

    async def heartbeat(self, table_id: str, row_id: str, token: str) -> dict:
        info = await self.touch(table_id, row_id, token)
        if info is None:
            raise Conflict("your lock on this row is gone (expired or broken): lock it again",
                           {"reason": "stale_lock"})
        return info

    async def release_by(self, table_id: str, row_id: str, user_id: str) -> dict | None:
        current = await self.backend.get(table_id, row_id, self.clock.time())
        if current is None:
            return None
        if current["userId"] != user_id:
            raise Locked(f"row is locked by {current['username']}",
                         {"holder": holder_view(current)})
        info = await self.backend.release(table_id, row_id, current["token"])
        if info:
            await self._ended(info, "released")
        return info

    async def force_release(self, table_id: str, row_id: str, reason: str) -> dict | None:
        info = await self.backend.release(table_id, row_id, None)
        if info:
            await self._ended(info, reason)
        return info

    async def holder(self, table_id: str, row_id: str) -> dict | None:
        return await self.backend.get(table_id, row_id, self.clock.time())

    async def table_locks(self, table_id: str) -> list[dict]:
        return await self.backend.table_locks(table_id, self.clock.time())

    async def drop_table(self, table_id: str) -> None:
        for info in await self.backend.table_locks(table_id, self.clock.time()):
            await self.backend.release(table_id, info["rowId"], None)
            self.owned.pop((table_id, info["rowId"]), None)

    # -- socket lifecycle -----------------------------------------------------------------

    async def socket_gone(self, sid: str) -> None:
        for key, owned in self.owned.items():
            if owned.sid == sid and owned.grace is None:
                owned.grace = self.clock.call_later(
                    self.grace,
                    lambda k=key, o=owned: asyncio.ensure_future(self._grace_over(k, o)))

    async def _grace_over(self, key: tuple[str, str], owned: Owned) -> None:
        if self.owned.get(key) is owned:
            del self.owned[key]  # no more renewals: if the release fails, the lease lapses
        try:
            # Compare on token and socket: if the user reclaimed the lock from a new socket,
            # this release matches nothing.
            info = await self.backend.release(*key, owned.token, sid=owned.sid)
        except Unavailable:
            log.warning("lock of a gone socket left to its lease (redis unreachable)")
            return
        if info:
            await self._ended(info, "disconnect")

    async def _ended(self, info: dict, reason: str) -> None:
        key = (info["tableId"], info["rowId"])
        owned = self.owned.get(key)
        if owned and owned.token == info["token"]:
            if owned.grace:
                owned.grace.cancel()
            del self.owned[key]
        if reason in ("timeout", "owner_override"):
            await self.backend.set_cooldown(*key, info["userId"], self.cooldown,
                                            self.clock.time())
        await self.push(info["projectId"], "row:unlocked",
                        {"tableId": info["tableId"], "rowId": info["rowId"], "reason": reason,
                         "userId": info["userId"]})

    # -- background work --------------------------------------------------------------------

    def attach(self, hooks: Hooks) -> None:
        """A socket that goes starts its locks' disconnect grace."""
        async def socket_gone(sid: str, user_id: str) -> None:
            await self.socket_gone(sid)

        hooks.socket_disconnected.append(socket_gone)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._renew_loop(), name="locks-renew"),
                       asyncio.create_task(self._reap_loop(), name="locks-reaper")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.leader.resign()

    async def _renew_loop(self) -> None:
        outage = OutageLog(log, "lock lease renewal")
        while True:
            await self.clock.sleep(self.lease / 3)
            try:
                await self.renew()
                outage.ok()
            except Unavailable as exc:
                outage.failed(exc)
            except Exception:
                log.exception("lock lease renewal failed")

    async def renew(self) -> None:
        now = self.clock.time()
        for key, owned in list(self.owned.items()):
            status, info, epoch = await self.backend.renew(owned.record, now, now + self.lease,
                                                           owned.epoch)
            if self.owned.get(key) is not owned:
                continue  # released or reclaimed while we waited
            if status == "ok":
                assert info is not None
                owned.record, owned.epoch = info, epoch
            elif status == "timeout":
                assert info is not None
                await self._ended(info, "timeout")
            else:
                del self.owned[key]  # timed out, broken or reclaimed elsewhere

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(1.0, self.lease / 6))
        outage = OutageLog(log, "lock reaper")
        while True:
            await self.clock.sleep(interval)
            try:
                if await self.leader.hold():
                    await self.reap()
                outage.ok()
            except Unavailable as exc:
                outage.failed(exc)
            except Exception:
                log.exception("lock reaper failed")

    async def reap(self) -> int:
        now = self.clock.time()
        count = 0
        for table_id, row_id in await self.backend.due(now):
            result = await self.backend.reap(table_id, row_id, now)
            if result:
                reason, info = result
                await self._ended(info, reason)
                count += 1
        return count
