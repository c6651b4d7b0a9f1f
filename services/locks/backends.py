"""Where row locks live: Redis (shared by instances; every operation one Lua script, so a
check and its write are atomic) or a dict (embedded default, one instance).

A lock record is JSON: token, ids, holder (userId, username), the socket and instance that
own it, ``deadline`` (edit timeout; moved by activity) and ``leaseUntil`` (renewed by the
owning instance while its holder is connected or within the disconnect grace). A lock is
live while both lie in the future; the ``due`` index orders locks by the earlier of the two
so the reaper finds expiries without scanning.

Redis may also forget every lock at once (a restart without persistence). ``locks:epoch``
tells that apart from a lock that ended: a random value set when missing, whose value at
grant time the owning instance keeps. A lock that is gone while the epoch is the one it was
granted under was released, reaped or broken; gone under another epoch, Redis lost it, and
the owner's next renewal puts it back (unless someone locked the row meanwhile, or its edit
deadline has passed), so neither the holder nor the room, told nothing, loses it.

Backends never read the clock: the service passes ``now`` (its ``Clock``) into every call
that compares against time, cooldowns included (stored as the instant they end), so a test's
``FakeClock`` drives both backends alike.
"""
from __future__ import annotations

import json
import math
import secrets
from abc import ABC, abstractmethod

DUE = "locks:due"
EPOCH = "locks:epoch"
MEMORY_EPOCH = "memory"  # a dict forgets nothing while its instance runs
# A Redis cooldown key holds the instant it ends; its TTL only bounds memory and is this
# much longer than the cooldown, so the comparison with ``now`` decides, not Redis' clock.
COOLDOWN_TTL_SLACK_S = 60.0


def lock_key(table_id: str, row_id: str) -> str:
    return f"lock:{table_id}:{row_id}"


def table_key(table_id: str) -> str:
    return f"locks:table:{table_id}"


def cooldown_key(table_id: str, row_id: str, user_id: str) -> str:
    return f"lockcd:{table_id}:{row_id}:{user_id}"


def live(info: dict, now: float) -> bool:
    return info["deadline"] > now and info["leaseUntil"] > now


def due_at(info: dict) -> float:
    return min(info["deadline"], info["leaseUntil"])


class LockBackend(ABC):
    @abstractmethod
    async def acquire(self, info: dict, now: float) -> tuple[str, dict | float | None, str]:
        """('ok', previous expired record or None) | ('mine', rebound record) |
        ('locked', holder record) | ('cooldown', seconds left); then the epoch (see the
        module doc) the lock is held under."""

    @abstractmethod
    async def renew(self, record: dict, now: float, lease_until: float,
                    epoch: str) -> tuple[str, dict | None, str]:
        """The owner's lease renewal of ``record`` (the lock as granted, or last renewed,
        under ``epoch``): ('ok', record now, epoch) | ('gone', None, epoch): it ended, or
        someone else holds the row | ('timeout', record, epoch): Redis lost it and its edit
        deadline has passed meanwhile, so it ends now."""

    @abstractmethod
    async def release(self, table_id: str, row_id: str, token: str | None,
                      sid: str | None = None) -> dict | None:
        """Delete if ``token`` (and ``sid``, when given) match; None token = force."""

    @abstractmethod
    async def extend(self, table_id: str, row_id: str, token: str, now: float,
                     lease_until: float, deadline: float | None,
                     sid: str | None = None) -> dict | None:
        """Move the lease (and deadline) of a live lock we hold; None if it is not ours."""

    @abstractmethod
    async def get(self, table_id: str, row_id: str, now: float) -> dict | None: ...

    @abstractmethod
    async def table_locks(self, table_id: str, now: float) -> list[dict]: ...

    @abstractmethod
    async def due(self, now: float, limit: int = 200) -> list[tuple[str, str]]: ...

    @abstractmethod
    async def reap(self, table_id: str, row_id: str, now: float) -> tuple[str, dict] | None:
        """Delete an expired lock: ('timeout' | 'disconnect', record), or None if live/gone."""

    @abstractmethod
    async def set_cooldown(self, table_id: str, row_id: str, user_id: str,
                           seconds: float, now: float) -> None:
        """``user_id`` may not lock the row again until ``now + seconds``."""


class MemoryLocks(LockBackend):
    def __init__(self):
        self.locks: dict[tuple[str, str], dict] = {}
        self.cooldowns: dict[tuple[str, str, str], float] = {}

    async def acquire(self, info, now):
        key = (info["tableId"], info["rowId"])
        until = self.cooldowns.get((*key, info["userId"]), 0)
        if until > now:
            return "cooldown", until - now, MEMORY_EPOCH
        current = self.locks.get(key)
        if current is not None and live(current, now):
            if current["userId"] != info["userId"]:
                return "locked", current, MEMORY_EPOCH
            info = {**info, "token": current["token"]}
            self.locks[key] = info
            return "mine", info, MEMORY_EPOCH
        self.locks[key] = info
        return "ok", current, MEMORY_EPOCH

    async def renew(self, record, now, lease_until, epoch):
        info = await self.extend(record["tableId"], record["rowId"], record["token"], now,
                                 lease_until, None, sid=record["sid"])
        return ("ok" if info else "gone"), info, epoch

    async def release(self, table_id, row_id, token, sid=None):
        current = self.locks.get((table_id, row_id))
        if current is None or (token is not None and current["token"] != token) or \
                (sid is not None and current["sid"] != sid):
            return None
        del self.locks[(table_id, row_id)]
        return current

    async def extend(self, table_id, row_id, token, now, lease_until, deadline, sid=None):
        current = self.locks.get((table_id, row_id))
        if current is None or current["token"] != token or not live(current, now) or \
                (sid is not None and current["sid"] != sid):
            return None
        current["leaseUntil"] = lease_until
        if deadline is not None:
            current["deadline"] = deadline
        return dict(current)

    async def get(self, table_id, row_id, now):
        current = self.locks.get((table_id, row_id))
        return dict(current) if current is not None and live(current, now) else None

    async def table_locks(self, table_id, now):
        return [dict(v) for (t, _), v in self.locks.items() if t == table_id and live(v, now)]

    async def due(self, now, limit=200):
        return [k for k, v in self.locks.items() if due_at(v) <= now][:limit]

    async def reap(self, table_id, row_id, now):
        current = self.locks.get((table_id, row_id))
        if current is None or live(current, now):
            return None
        del self.locks[(table_id, row_id)]
        return ("timeout" if current["deadline"] <= now else "disconnect"), current

    async def set_cooldown(self, table_id, row_id, user_id, seconds, now):
        if seconds > 0:
            self.cooldowns[(table_id, row_id, user_id)] = now + seconds
        if len(self.cooldowns) > 10_000:
            self.cooldowns = {k: v for k, v in self.cooldowns.items() if v > now}


# The epoch, set to ARGV[n] (a fresh random value) when Redis has none.
_EPOCH = """
local epoch = redis.call('GET', KEYS[{key}])
if not epoch then
  epoch = ARGV[{arg}]
  redis.call('SET', KEYS[{key}], epoch)
end
"""

# KEYS: lock, due zset, table set, cooldown, epoch   ARGV: record json, now, user id, fresh epoch
_ACQUIRE = _EPOCH.format(key=5, arg=4) + """
local now = tonumber(ARGV[2])
local cd = redis.call('GET', KEYS[4])
if cd and tonumber(cd) > now then return {'cooldown', tostring(tonumber(cd) - now), epoch} end
local new = cjson.decode(ARGV[1])
local cur = redis.call('GET', KEYS[1])
local result = 'ok'
if cur then
  local info = cjson.decode(cur)
  if info.deadline > now and info.leaseUntil > now then
    if info.userId ~= ARGV[3] then return {'locked', cur, epoch} end
    new.token = info.token
    result = 'mine'
  end
end
local encoded = cjson.encode(new)
redis.call('SET', KEYS[1], encoded)
redis.call('ZADD', KEYS[2], math.min(new.deadline, new.leaseUntil), KEYS[1])
redis.call('SADD', KEYS[3], KEYS[1])
if result == 'mine' then return {'mine', encoded, epoch} end
return {'ok', cur or '', epoch}
"""

# KEYS: lock, due, table, epoch   ARGV: our record, now, leaseUntil, our epoch, a fresh epoch
_RENEW = _EPOCH.format(key=4, arg=5) + """
local now = tonumber(ARGV[2])
local mine = cjson.decode(ARGV[1])
local info
local cur = redis.call('GET', KEYS[1])
if cur then
  info = cjson.decode(cur)
  if info.token ~= mine.token or info.sid ~= mine.sid or info.deadline <= now
      or info.leaseUntil <= now then
    return {'gone', '', epoch}
  end
elseif epoch ~= ARGV[4] then
  info = mine
  if info.deadline <= now then return {'timeout', ARGV[1], epoch} end
else
  return {'gone', '', epoch}
end
info.leaseUntil = tonumber(ARGV[3])
local encoded = cjson.encode(info)
redis.call('SET', KEYS[1], encoded)
redis.call('ZADD', KEYS[2], math.min(info.deadline, info.leaseUntil), KEYS[1])
redis.call('SADD', KEYS[3], KEYS[1])
return {'ok', encoded, epoch}
"""

# KEYS: lock, due, table   ARGV: token ('' = force), sid ('' = any)
_RELEASE = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local info = cjson.decode(cur)
if ARGV[1] ~= '' and info.token ~= ARGV[1] then return false end
if ARGV[2] ~= '' and info.sid ~= ARGV[2] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], KEYS[1])
return cur
"""

# KEYS: lock, due   ARGV: token, now, leaseUntil, deadline ('' = keep), sid ('' = any)
_EXTEND = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local info = cjson.decode(cur)
local now = tonumber(ARGV[2])
if info.token ~= ARGV[1] or info.deadline <= now or info.leaseUntil <= now then return false end
if ARGV[5] ~= '' and info.sid ~= ARGV[5] then return false end
info.leaseUntil = tonumber(ARGV[3])
if ARGV[4] ~= '' then info.deadline = tonumber(ARGV[4]) end
local encoded = cjson.encode(info)
redis.call('SET', KEYS[1], encoded)
redis.call('ZADD', KEYS[2], math.min(info.deadline, info.leaseUntil), KEYS[1])
return encoded
"""

# KEYS: lock, due, table   ARGV: now
_REAP = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return false
end
local info = cjson.decode(cur)
local now = tonumber(ARGV[1])
local reason
if info.deadline <= now then reason = 'timeout'
elseif info.leaseUntil <= now then reason = 'disconnect'
else
  redis.call('ZADD', KEYS[2], math.min(info.deadline, info.leaseUntil), KEYS[1])
  return false
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], KEYS[1])
return {reason, cur}
"""


class RedisLocks(LockBackend):
    def __init__(self, redis):
        self.redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._extend = redis.register_script(_EXTEND)
        self._reap = redis.register_script(_REAP)
        self._renew = redis.register_script(_RENEW)

    async def renew(self, record, now, lease_until, epoch):
        t, r = record["tableId"], record["rowId"]
        kind, payload, current = await self._renew(
            keys=[lock_key(t, r), DUE, table_key(t), EPOCH],
            args=[json.dumps(record), now, lease_until, epoch, secrets.token_hex(8)])
        return kind.decode(), json.loads(payload) if payload else None, current.decode()

    async def acquire(self, info, now):
        t, r = info["tableId"], info["rowId"]
        kind, payload, epoch = await self._acquire(
            keys=[lock_key(t, r), DUE, table_key(t), cooldown_key(t, r, info["userId"]), EPOCH],
            args=[json.dumps(info), now, info["userId"], secrets.token_hex(8)])
        kind, epoch = kind.decode(), epoch.decode()
        if kind == "cooldown":
            return kind, float(payload), epoch
        if kind == "ok":
            return kind, json.loads(payload) if payload else None, epoch
        return kind, json.loads(payload), epoch

    async def release(self, table_id, row_id, token, sid=None):
        raw = await self._release(keys=[lock_key(table_id, row_id), DUE, table_key(table_id)],
                                  args=[token or "", sid or ""])
        return json.loads(raw) if raw else None

    async def extend(self, table_id, row_id, token, now, lease_until, deadline, sid=None):
        raw = await self._extend(keys=[lock_key(table_id, row_id), DUE],
                                 args=[token, now, lease_until,
                                       "" if deadline is None else deadline, sid or ""])
        return json.loads(raw) if raw else None

    async def get(self, table_id, row_id, now):
        raw = await self.redis.get(lock_key(table_id, row_id))
        if not raw:
            return None
        info = json.loads(raw)
        return info if live(info, now) else None

    async def table_locks(self, table_id, now):
        keys = await self.redis.smembers(table_key(table_id))
        if not keys:
            return []
        out = []
        for raw in await self.redis.mget(sorted(keys)):
            if raw:
                info = json.loads(raw)
                if live(info, now):
                    out.append(info)
        return out

    async def due(self, now, limit=200):
        keys = await self.redis.zrangebyscore(DUE, "-inf", now, start=0, num=limit)
        out = []
        for key in keys:
            _, table_id, row_id = key.decode().split(":", 2)
            out.append((table_id, row_id))
        return out

    async def reap(self, table_id, row_id, now):
        raw = await self._reap(keys=[lock_key(table_id, row_id), DUE, table_key(table_id)],
                               args=[now])
        if not raw:
            return None
        return raw[0].decode(), json.loads(raw[1])

    async def set_cooldown(self, table_id, row_id, user_id, seconds, now):
        if seconds > 0:
            await self.redis.set(cooldown_key(table_id, row_id, user_id), repr(now + seconds),
                                 px=math.ceil((seconds + COOLDOWN_TTL_SLACK_S) * 1000))
