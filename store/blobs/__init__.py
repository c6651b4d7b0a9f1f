"""Where file bytes live: a directory under DATA_DIR (embedded) or GridFS (MongoDB).

Writers stream: nothing holds a whole file in memory, and a write that is not committed
(cut-off upload, size limit, crash) leaves nothing behind under the final key.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

CHUNK = 256 * 1024


class BlobWriter(ABC):
    key: str
    size: int = 0

    @abstractmethod
    async def write(self, chunk: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the blob visible under its key."""

    @abstractmethod
    async def abort(self) -> None:
        """Drop everything written so far; safe to call twice or after commit fails."""


class BlobStore(ABC):
    @abstractmethod
    async def create(self, key: str) -> BlobWriter: ...

    @abstractmethod
    def read(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """The blob's bytes; ``store.errors.BlobMissing`` (``not_found``, and a
        FileNotFoundError) when it is gone — also from ``local_copy``."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing blob is not an error."""

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str, suffix: str = "") -> AsyncIterator[Path]:
        """A path to the blob's bytes for tools that need a file (tshark, the CSV reader).

        The default streams a temporary copy; a store on local disk yields the file itself.
        """
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=suffix)
        os.close(fd)
        path = Path(name)
        try:
            with open(path, "wb") as fh:
                async for chunk in self.read(key):
                    await asyncio.to_thread(fh.write, chunk)
            yield path
        finally:
            path.unlink(missing_ok=True)

    async def close(self) -> None:
        pass
