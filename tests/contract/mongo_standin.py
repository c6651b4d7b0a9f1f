"""An async facade over mongomock: the AsyncMongoClient subset ``store.mongo`` uses.

It only translates sync calls into awaitables. Query and update semantics, and errors
(``pymongo.errors.DuplicateKeyError`` and friends), are mongomock's own. Every call first
yields to the event loop, as a network round trip would, so a backend that splits a
read-modify-write over two calls can be interleaved and caught by the concurrency tests;
each mongomock call itself runs whole, like one single-document operation on a server.

Methods outside the subset raise AttributeError, so the backend cannot quietly start
depending on something the stand-in was never checked against.

``StandinGridFSBucket`` does the same for GridFS: the AsyncGridFSBucket subset
``store.blobs.gridfs`` calls, over pymongo's sync GridFSBucket on the mongomock database.

Known mongomock gaps the backend avoids (see store/mongo/projects.py): positional
projection (``"members.$"``), ``array_filters``, ``$mergeObjects`` in pipeline updates, and
positional ``$`` updates through ``find_one_and_update`` (mongomock re-targets by _id and
updates the wrong array element). Its DuplicateKeyError carries no ``details``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import mongomock

COLLECTION_METHODS = frozenset({
    "insert_one", "find_one", "find_one_and_update", "update_one", "update_many",
    "delete_one", "delete_many", "count_documents", "create_index", "index_information",
    "insert_many", "find_one_and_delete",  # files, tables
})


def _awaitable(method):
    async def call(*args, **kwargs):
        await asyncio.sleep(0)
        return method(*args, **kwargs)

    return call


class StandinCursor:
    def __init__(self, cursor: mongomock.collection.Cursor):
        self._cursor = cursor

    def sort(self, *args, **kwargs) -> "StandinCursor":
        self._cursor.sort(*args, **kwargs)
        return self

    def limit(self, n: int) -> "StandinCursor":
        self._cursor.limit(n)
        return self

    def batch_size(self, n: int) -> "StandinCursor":
        self._cursor.batch_size(n)
        return self

    async def close(self) -> None:
        self._cursor.close()

    async def to_list(self, length: int | None = None) -> list[dict]:
        await asyncio.sleep(0)
        docs = list(self._cursor)
        return docs if length is None else docs[:length]

    def __aiter__(self) -> "StandinCursor":
        return self

    async def __anext__(self) -> dict:
        await asyncio.sleep(0)
        try:
            return next(self._cursor)
        except StopIteration:
            raise StopAsyncIteration from None


class StandinCollection:
    def __init__(self, collection: mongomock.Collection):
        self._collection = collection

    def find(self, *args, **kwargs) -> StandinCursor:
        return StandinCursor(self._collection.find(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        if name not in COLLECTION_METHODS:
            raise AttributeError(f"the mongomock stand-in does not offer Collection.{name}")
        return _awaitable(getattr(self._collection, name))


class StandinDatabase:
    def __init__(self, database: mongomock.Database):
        self._database = database
        self.name = database.name

    def __getitem__(self, name: str) -> StandinCollection:
        return StandinCollection(self._database[name])

    get_collection = __getitem__

    async def command(self, *args, **kwargs) -> dict:
        await asyncio.sleep(0)
        return self._database.command(*args, **kwargs)


class StandinClient:
    """Wraps one mongomock client; several stand-ins over the same one share its data,
    as several server instances share one MongoDB."""

    def __init__(self, sync: mongomock.MongoClient | None = None):
        self.sync = sync if sync is not None else mongomock.MongoClient(tz_aware=True)
        self.admin = StandinDatabase(self.sync.admin)
        self.closed = False

    def __getitem__(self, name: str) -> StandinDatabase:
        return StandinDatabase(self.sync[name])

    get_database = __getitem__

    async def drop_database(self, name: str) -> None:
        await asyncio.sleep(0)
        self.sync.drop_database(name)

    async def close(self) -> None:
        # The mongomock client stays usable: its data outlives this handle, like a server's.
        self.closed = True


# -- GridFS ---------------------------------------------------------------------------------

_gridfs_enabled = False


def _sync_gridfs_bucket(database: mongomock.Database, bucket_name: str):
    global _gridfs_enabled
    import gridfs
    import mongomock.gridfs

    if not _gridfs_enabled:  # patches gridfs's isinstance checks to accept mongomock; once
        mongomock.gridfs.enable_gridfs_integration()
        _gridfs_enabled = True
    bucket = gridfs.GridFSBucket(database, bucket_name=bucket_name)
    # pymongo reads its client-side timeout from ``client.options.timeout``, which on a
    # mongomock client is an auto-created collection: say "no timeout" instead.
    bucket._timeout = None
    return bucket


class StandinGridIn:
    def __init__(self, stream):
        self._stream = stream

    async def write(self, data: bytes) -> None:
        await asyncio.sleep(0)
        self._stream.write(data)

    async def close(self) -> None:
        await asyncio.sleep(0)
        self._stream.close()

    async def abort(self) -> None:
        await asyncio.sleep(0)
        self._stream.abort()


class StandinGridOut:
    def __init__(self, stream):
        self._stream = stream

    async def read(self, size: int = -1) -> bytes:
        await asyncio.sleep(0)
        return self._stream.read(size)

    async def close(self) -> None:
        await asyncio.sleep(0)
        self._stream.close()


class StandinGridFSBucket:
    """The AsyncGridFSBucket subset ``store.blobs.gridfs.GridFSBlobs`` uses, over pymongo's
    own sync GridFSBucket on the mongomock database: files and chunks documents, the
    "no files document until close" rule and ``gridfs.errors.NoFile`` are pymongo's."""

    def __init__(self, database: "StandinDatabase | mongomock.Database",
                 bucket_name: str = "blobs"):
        sync = database._database if isinstance(database, StandinDatabase) else database
        self._bucket = _sync_gridfs_bucket(sync, bucket_name)

    def open_upload_stream_with_id(self, file_id: Any, filename: str, **kwargs) -> StandinGridIn:
        return StandinGridIn(self._bucket.open_upload_stream_with_id(file_id, filename,
                                                                     **kwargs))

    async def open_download_stream(self, file_id: Any) -> StandinGridOut:
        await asyncio.sleep(0)
        return StandinGridOut(self._bucket.open_download_stream(file_id))

    async def delete(self, file_id: Any) -> None:
        await asyncio.sleep(0)
        self._bucket.delete(file_id)
