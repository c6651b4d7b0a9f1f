"""The Redis client an instance shares (presence, row locks, leader leases, rate limits, the
bus), and what a caller sees while Redis is unreachable.

redis-py retries a lost connection a few times with a short, growing backoff (a restart or
failover of Redis blips for well under a second); past that, the command fails with
``RedisUnavailable``: still a redis-py ``ConnectionError``/``TimeoutError`` for code that
catches those, and also the product's ``unavailable`` error, so an event that needed Redis
answers ``unavailable`` rather than ``internal``. The translation sits in the client's retry
policy, the one place every command, pipeline, script and pub/sub read passes through.
"""
from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ExceptionType
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.errors import Unavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

RETRIES = 3
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.05, 0.5
# A command (or a connect) that gets no answer this long fails instead of waiting forever
# on a Redis that hangs; pub/sub reads pass their own timeout.
SOCKET_TIMEOUT_S = 5.0
MESSAGE = "shared state (Redis) is unreachable; try again shortly"


class _Unreachable(Unavailable):
    def __init__(self, cause: Exception):
        Unavailable.__init__(self, MESSAGE, {"reason": "redis_unreachable"})
        self.cause = cause
        # What redis-py's own errors carry (RedisError.__init__ is not run).
        self.error_type = ExceptionType.NETWORK
        self.status_code: str | None = None


class RedisUnavailable(RedisConnectionError, _Unreachable):
    """Redis could not be reached (refused, reset, closed)."""


class RedisTimedOut(RedisTimeoutError, _Unreachable):
    """Redis did not answer within the socket timeout."""


class UnavailableRetry(Retry):
    """redis-py's retry, whose final failure is raised as the product's ``unavailable``."""

    async def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        try:
            return await super().call_with_retry(do, fail, is_retryable, with_failure_count)
        except _Unreachable:
            raise
        except RedisTimeoutError as exc:
            raise RedisTimedOut(exc) from exc
        except RedisConnectionError as exc:
            raise RedisUnavailable(exc) from exc


def _keepalive() -> dict[int, int]:
    """TCP keepalive probes after 10 s of silence, every 5 s, 3 of them: a pub/sub read that
    waits for messages learns in ~25 s that Redis vanished without closing the connection
    (a host or network gone), instead of after the kernel's default two hours."""
    names = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
    return {getattr(socket, n): v for n, v in names.items() if hasattr(socket, n)}


def client_options(retries: int = RETRIES) -> dict[str, Any]:
    """Options for ``Redis.from_url``: a short retry, bounded waits, a health check."""
    backoff = ExponentialWithJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)
    return {"retry": UnavailableRetry(backoff, retries),
            "socket_connect_timeout": SOCKET_TIMEOUT_S, "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_keepalive": True, "socket_keepalive_options": _keepalive(),
            "health_check_interval": 10}


def open_redis(url: str) -> Redis:
    import redis.asyncio as aioredis

    return aioredis.from_url(url, **client_options())


class OutageLog:
    """For a background loop that needs Redis: one warning when Redis stops answering and
    one when it answers again, instead of a traceback on every pass of the outage."""

    def __init__(self, logger: logging.Logger, what: str):
        self.logger, self.what, self.down = logger, what, False

    def failed(self, exc: Exception) -> None:
        if not self.down:
            self.down = True
            self.logger.warning("%s: redis unreachable, retrying", self.what,
                                extra={"fields": {"error": str(exc)}})

    def ok(self) -> None:
        if self.down:
            self.down = False
            self.logger.warning("%s: redis answers again", self.what)
