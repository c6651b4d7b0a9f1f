"""Blobs in MongoDB GridFS, so any instance can serve any file."""
from __future__ import annotations

from collections.abc import AsyncIterator

from store.blobs import CHUNK, BlobStore, BlobWriter
from store.errors import BlobMissing

BUCKET = "blobs"


class GridFSWriter(BlobWriter):
    def __init__(self, stream, key: str):
        self._stream = stream
        self.key = key
        self.size = 0
        self._done = False

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        await self._stream.write(chunk)

    async def commit(self) -> None:
        # GridFS writes the files document only on close: until then a reader sees nothing.
        await self._stream.close()
        self._done = True

    async def abort(self) -> None:
        if not self._done:
            self._done = True
            await self._stream.abort()  # removes the chunks written so far


class GridFSBlobs(BlobStore):
    def __init__(self, database=None, *, bucket=None):
        if bucket is None:
            from gridfs import AsyncGridFSBucket

            bucket = AsyncGridFSBucket(database, bucket_name=BUCKET)
        self.bucket = bucket

    async def create(self, key: str) -> BlobWriter:
        stream = self.bucket.open_upload_stream_with_id(key, key)
        return GridFSWriter(stream, key)

    async def read(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        from gridfs.errors import NoFile

        try:
            stream = await self.bucket.open_download_stream(key)
        except NoFile:
            raise BlobMissing(key) from None
        try:
            while chunk := await stream.read(chunk_size):
                yield chunk
        finally:
            await stream.close()

    async def delete(self, key: str) -> None:
        from gridfs.errors import NoFile

        try:
            await self.bucket.delete(key)
        except NoFile:
            pass

    async def exists(self, key: str) -> bool:
        from gridfs.errors import NoFile

        try:
            stream = await self.bucket.open_download_stream(key)
        except NoFile:
            return False
        await stream.close()
        return True
