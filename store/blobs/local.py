"""Blobs as files under DATA_DIR/files, shared by every process on the host."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from store.blobs import CHUNK, BlobStore, BlobWriter
from store.errors import BlobMissing

# Writes are batched into ~1 MiB before a thread hop: upload chunks are often 8-64 KiB.
FLUSH_AT = 1 << 20
STALE_PART_S = 3600


class LocalWriter(BlobWriter):
    def __init__(self, store: LocalBlobs, key: str):
        self.store = store
        self.key = key
        self.size = 0
        self._part = store.parts / f"{key}.{os.getpid()}.part"
        self._fh: BinaryIO | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._done = False

    async def write(self, chunk: bytes) -> None:
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        self.size += len(chunk)
        if self._buffered >= FLUSH_AT:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
        await asyncio.to_thread(self._write_sync, data)

    def _write_sync(self, data: bytes) -> None:
        if self._fh is None:
            self._fh = open(self._part, "wb")
        self._fh.write(data)

    async def commit(self) -> None:
        await self._flush()
        await asyncio.to_thread(self._commit_sync)
        self._done = True

    def _commit_sync(self) -> None:
        if self._fh is None:
            self._fh = open(self._part, "wb")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        final = self.store.path(self.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._part, final)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = []
        await asyncio.to_thread(self._abort_sync)

    def _abort_sync(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._part.unlink(missing_ok=True)


class LocalBlobs(BlobStore):
    def __init__(self, root: Path):
        self.root = Path(root)
        self.parts = self.root / ".parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_parts()

    def _sweep_stale_parts(self) -> None:
        # A crashed process leaves its .part behind; others may still be writing theirs.
        cutoff = time.time() - STALE_PART_S
        for part in self.parts.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
            except FileNotFoundError:
                pass

    def path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key[-2:] / key

    async def create(self, key: str) -> BlobWriter:
        self.path(key)  # validates the key
        return LocalWriter(self, key)

    async def read(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        try:
            fh = await asyncio.to_thread(open, self.path(key), "rb")
        except FileNotFoundError:
            raise BlobMissing(key) from None
        try:
            while chunk := await asyncio.to_thread(fh.read, chunk_size):
                yield chunk
        finally:
            fh.close()

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str, suffix: str = "") -> AsyncIterator[Path]:
        path = self.path(key)
        if not await asyncio.to_thread(path.exists):
            raise BlobMissing(key)
        try:
            yield path  # the file itself: it may be deleted while it is read
        except FileNotFoundError as exc:
            if exc.filename == str(path):
                raise BlobMissing(key) from None
            raise

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).exists)
