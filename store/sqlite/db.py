"""SQLite access off the event loop: one writer thread, a few reader threads.

Each transaction is one function run whole in a worker thread, so the loop pays one
thread hop per operation and transactions never interleave. WAL lets readers see the
last committed state while a write is open; ``BEGIN IMMEDIATE`` plus a busy timeout make
several server processes on one host safe on the same file.
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from store.errors import Conflict
from store.sqlite.migrations import MIGRATIONS

R = TypeVar("R")
BUSY_TIMEOUT_MS = 15_000


class Database:
    def __init__(self, path: Path, readers: int = 2):
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-w")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-r")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _run_write(self, fn: Callable[..., R], args) -> R:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            raise Conflict(_conflict_message(exc)) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _run_read(self, fn: Callable[..., R], args) -> R:
        return fn(self._conn(), *args)

    async def write(self, fn: Callable[..., R], *args) -> R:
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._run_write, fn, args)

    async def read(self, fn: Callable[..., R], *args) -> R:
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._run_read, fn, args)

    async def migrate(self) -> int:
        return await self.write(_apply_migrations)

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def _set_wal(conn: sqlite3.Connection) -> None:
    # Leaving rollback mode needs a lock upgrade that SQLite refuses at once (no busy
    # handler) while another connection holds the write lock, e.g. a second process still
    # migrating a fresh file: retry until the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _apply_migrations(conn: sqlite3.Connection) -> int:
    # Runs inside BEGIN IMMEDIATE: when several processes start at once, the first applies
    # the migrations and the others find user_version already current.
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for target, statements in sorted(MIGRATIONS, key=lambda m: m[0]):
        if target <= version:
            continue
        for stmt in statements:
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version={int(target)}")
        version = target
    return version


def _conflict_message(exc: sqlite3.IntegrityError) -> str:
    text = str(exc)
    if "UNIQUE" in text:
        column = text.rsplit(".", 1)[-1].removesuffix("_lc")
        return f"{column} is already taken"
    return "the change conflicts with existing data"
