"""A Redis connection whose commands are pipelined: each is written in the order it was called,
without waiting for the answers of those before it.

redis-py's asyncio client takes a connection from its pool for each command and holds it until
the answer, so two commands issued one after the other either wait for each other (one round
trip each) or go out on two connections, in no set order. Numbered pushes need both the order
and no wait: a reply's first words are numbered right behind its ``message:started``, and the
numbering order is the room's order (services/replay.py). Here a command is queued when it is
called (``call`` is not a coroutine: the order is fixed before anything awaits), one writer
task sends whatever is queued as one write, and one reader task hands the answers, which Redis
gives in the order it got the commands, to their callers' futures.

The connection is redis-py's own (its parser, its retrying connect, the client's options).
When it fails (refused, reset, no answer within the socket timeout) every command waiting on
it fails with the error; the next call connects again.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.connection import AbstractConnection


class _Link:
    """One connection and the futures of the commands written on it, oldest first."""

    def __init__(self, conn: AbstractConnection):
        self.conn = conn
        self.waiting: deque[asyncio.Future] = deque()
        self.more = asyncio.Event()  # set when ``waiting`` gains a command
        self.reader: asyncio.Task | None = None
        self.broken = False

    def fail(self, exc: Exception) -> None:
        """Every command waiting here fails with ``exc`` as a redis-py error (what callers
        of a Redis client catch)."""
        if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
            exc = RedisTimeoutError("Redis did not answer in time")
        elif not isinstance(exc, RedisError):
            exc = RedisConnectionError(f"the connection to Redis failed: {exc!r}")
        self.broken = True
        self.more.set()  # a reader parked on it ends
        waiting, self.waiting = self.waiting, deque()
        _fail(waiting, exc)


def _fail(futures: Iterable[asyncio.Future], exc: Exception) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_exception(exc)


class PipelinedRedis:
    def __init__(self, redis: Redis):
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # The client's socket timeout bounds each read and write here, around redis-py's
        # calls: with it set, redis-py writes from a task of its own (``wait_for``), a turn
        # of the loop after the call, and whatever runs in between goes first.
        self._timeout = kwargs.pop("socket_timeout", None)
        self._connect_with = (pool.connection_class, kwargs)
        self._queue: deque[tuple[tuple, asyncio.Future]] = deque()
        self._queued = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._link: _Link | None = None

    def call(self, *args: Any) -> asyncio.Future:
        """Queue the command ``args`` now; the future gets its answer (or its error)."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((args, fut))
        self._queued.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(),
                                                                 name="redis-pipe-writer")
        return fut

    async def aclose(self) -> None:
        for task in (self._writer, self._link.reader if self._link else None):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._link is not None:
            self._link.fail(RedisConnectionError("the connection was closed"))
            with contextlib.suppress(Exception):
                await self._link.conn.disconnect()
            self._link = None
        while self._queue:
            self._queue.popleft()[1].cancel()

    async def _write(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch = list(self._queue)
                self._queue.clear()
                futures = [f for _, f in batch]
                try:
                    link = await self._connected()
                except Exception as exc:  # Redis unreachable: these fail, the next retries
                    _fail(futures, exc)
                    continue
                try:
                    packed = link.conn.pack_commands([args for args, _ in batch])
                except Exception as exc:  # an argument redis-py cannot encode: these fail
                    _fail(futures, exc)
                    continue
                link.waiting.extend(futures)
                link.more.set()
                try:
                    async with asyncio.timeout(self._timeout):
                        await link.conn.send_packed_command(packed, check_health=False)
                except Exception as exc:
                    link.fail(exc)

    async def _connected(self) -> _Link:
        link = self._link
        if link is not None and not link.broken:
            return link
        if link is not None:
            with contextlib.suppress(Exception):
                await link.conn.disconnect()
        cls, kwargs = self._connect_with
        conn = cls(**kwargs)
        await conn.connect()
        link = self._link = _Link(conn)
        link.reader = asyncio.get_running_loop().create_task(self._read(link),
                                                             name="redis-pipe-reader")
        return link

    async def _read(self, link: _Link) -> None:
        while not link.broken:
            if not link.waiting:
                link.more.clear()
                await link.more.wait()
                continue
            try:
                async with asyncio.timeout(self._timeout):
                    answer: Any = await link.conn.read_response()
            except ResponseError as exc:  # this command's error; the connection is fine
                answer = exc
            except Exception as exc:
                link.fail(exc)
                return
            fut = link.waiting.popleft()
            if fut.done():  # its caller stopped waiting
                continue
            if isinstance(answer, Exception):
                fut.set_exception(answer)
            else:
                fut.set_result(answer)
