"""Leader leases: exactly one instance does a cluster-wide chore (the lock reaper, the
ticker). With Redis: a key set NX with a TTL, renewed only by its holder (compare-and-extend
in Lua, as redis-py's Lock does); on the embedded default the only instance always leads."""
from __future__ import annotations

import logging
import secrets
from typing import Protocol

from services.redis_client import OutageLog
from store.errors import Unavailable

log = logging.getLogger("services.leader")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Leader(Protocol):
    async def hold(self) -> bool:
        """Take or keep the lease; whether this instance leads until the lease's ttl."""

    async def resign(self) -> None: ...


def make_leader(redis, name: str, instance_id: str, ttl: float) -> Leader:
    """The lease for chore ``name``: in Redis when the instance has it, else always ours."""
    if redis is None:
        return LocalLeader(name, instance_id)
    return RedisLeader(redis, name, instance_id, ttl)


class LocalLeader:
    def __init__(self, name: str, instance_id: str):
        self.name, self.instance_id = name, instance_id

    async def hold(self) -> bool:
        return True

    async def resign(self) -> None:
        pass


class RedisLeader:
    """``hold()`` takes or keeps the lease and says whether we lead until ``ttl`` from now."""

    def __init__(self, redis, name: str, instance_id: str, ttl: float):
        self.redis = redis
        self.key = f"leader:{name}"
        self.instance_id = instance_id
        # The value is unique per process start, so a restarted instance with the same id
        # never mistakes an old lease for its own.
        self.token = f"{instance_id}:{secrets.token_hex(6)}"
        self.ttl_ms = int(ttl * 1000)
        self._renew = redis.register_script(_RENEW)
        self._resign = redis.register_script(_RESIGN)
        self._outage = OutageLog(log, f"leader lease {name}")

    async def hold(self) -> bool:
        try:
            held = bool(await self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except Unavailable as exc:
            # No Redis, no lease: whatever we held lapses for the others within ttl, and we
            # stop now, so two leaders never overlap; the chore waits for Redis.
            self._outage.failed(exc)
            return False
        self._outage.ok()
        return held

    async def resign(self) -> None:
        await self._resign(keys=[self.key], args=[self.token])
