"""Chooses the backend from configuration; the only place that knows both."""
from __future__ import annotations

from pathlib import Path

from store.base import Store
from store.blobs import BlobStore


async def open_store(*, data_dir: Path, mongo_url: str | None = None,
                     mongo_db: str = "collab") -> Store:
    if mongo_url:
        from store.mongo import MongoStore  # imported lazily: the embedded default needs no driver

        return await MongoStore.open(mongo_url, mongo_db)
    from store.sqlite import SqliteStore

    return await SqliteStore.open(Path(data_dir) / "collab.sqlite3")


async def open_blobs(store: Store, *, data_dir: Path) -> BlobStore:
    """The blob store that goes with ``store``: GridFS beside MongoDB, else a directory."""
    if store.backend == "mongo":
        from store.blobs.gridfs import GridFSBlobs
        from store.mongo import MongoStore

        assert isinstance(store, MongoStore)  # the only store whose backend is "mongo"
        return GridFSBlobs(store.db)
    from store.blobs.local import LocalBlobs

    return LocalBlobs(Path(data_dir) / "files")
