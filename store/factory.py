"""Chooses the backend from configuration; the only place that knows both."""
from __future__ import annotations

from pathlib import Path

from store.base import Store


async def open_store(*, data_dir: Path, mongo_url: str | None = None,
                     mongo_db: str = "collab") -> Store:
    if mongo_url:
        from store.mongo import MongoStore  # imported lazily: the embedded default needs no driver

        return await MongoStore.open(mongo_url, mongo_db)
    from store.sqlite import SqliteStore

    return await SqliteStore.open(Path(data_dir) / "collab.sqlite3")
