"""Where a test server keeps its data on the MongoDB backend: a real MongoDB when MONGO_URL
is set (a fresh database, dropped by ``close``), else the strict stand-in
(``tests/contract/mongo_standin.py``) with its GridFS bucket. Several servers given the
same ``MongoStorage`` share one data set, like instances of one deployment."""
from __future__ import annotations

import uuid

import mongomock

from store.blobs.gridfs import BUCKET, GridFSBlobs
from store.mongo import MongoStore
from tests.contract.conftest import MONGO_URL
from tests.contract.mongo_standin import StandinClient, StandinGridFSBucket


class MongoStorage:
    def __init__(self, db: str = "collab"):
        if MONGO_URL:
            import pymongo

            self.sync = pymongo.MongoClient(MONGO_URL, tz_aware=True)
            self.db = f"it_{uuid.uuid4().hex[:12]}"
            # Each server opens the database itself, from its settings.
            self.settings: dict[str, str] = {"mongo_url": MONGO_URL, "mongo_db": self.db}
            self.open_storage = None
        else:
            self.sync = mongomock.MongoClient(tz_aware=True)
            self.db = db
            self.settings = {}
            client = StandinClient(self.sync)
            bucket = StandinGridFSBucket(client[db], BUCKET)

            async def open_storage(settings):
                store = MongoStore(client, db)
                await store.create_indexes()
                return store, GridFSBlobs(bucket=bucket)

            self.open_storage = open_storage

    @property
    def sync_db(self):
        """The data set, read beside the servers."""
        return self.sync[self.db]

    def close(self) -> None:
        if MONGO_URL:
            self.sync.drop_database(self.db)
        self.sync.close()
