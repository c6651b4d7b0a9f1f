"""The ``store`` fixture: every contract test runs once per backend.

``sqlite`` always runs. The MongoDB backend runs once too: on ``mongo-real`` when MONGO_URL is
set (a fresh database per test, dropped afterwards), the way Synapse's suite switches to
PostgreSQL, else on ``mongo-standin`` (mongomock behind the driver's codec: see
mongo_standin.py). Only one of the two is generated, so no skipped test poses as coverage.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import mongomock
import pytest

from store.base import Store
from store.mongo import MongoStore
from store.sqlite import SqliteStore
from tests.contract.mongo_standin import StandinClient

MONGO_URL = os.environ.get("MONGO_URL")
BACKENDS = ["sqlite", "mongo-real" if MONGO_URL else "mongo-standin"]


class Backend:
    """Opens Store objects over one data set: each ``open()`` is a new instance (like
    another server process) seeing the same data."""

    name: str

    async def open(self) -> Store:
        raise NotImplementedError

    async def drop(self) -> None:
        """Removes the data set, for backends that outlive the test."""


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, tmp_path: Path):
        self.path = tmp_path / "x.sqlite3"

    async def open(self) -> Store:
        return await SqliteStore.open(self.path)


class StandinBackend(Backend):
    name = "mongo-standin"

    def __init__(self):
        self.sync = mongomock.MongoClient()
        self.db_name = "contract"

    async def open(self) -> Store:
        store = MongoStore(StandinClient(self.sync), self.db_name)
        await store.create_indexes()
        return store


class RealMongoBackend(Backend):
    name = "mongo-real"

    def __init__(self):
        self.db_name = f"contract_{uuid.uuid4().hex[:12]}"

    async def open(self) -> Store:
        return await MongoStore.open(MONGO_URL, self.db_name)

    async def drop(self) -> None:
        store = await self.open()
        try:
            await store.client.drop_database(self.db_name)
        finally:
            await store.close()


@pytest.fixture(params=BACKENDS)
async def backend(request, tmp_path):
    made = {"sqlite": lambda: SqliteBackend(tmp_path), "mongo-standin": StandinBackend,
            "mongo-real": RealMongoBackend}[request.param]()
    yield made
    await made.drop()


@pytest.fixture
async def store(backend):
    opened = await backend.open()
    yield opened
    await opened.close()


@pytest.fixture
def make_user(store):
    """Creates users with unique names; keyword arguments override the defaults."""
    counter = iter(range(1_000_000))

    async def make(**overrides):
        n = next(counter)
        fields = {"email": f"user{n}@example.com", "username": f"user{n}",
                  "password_hash": "hash"}
        fields.update(overrides)
        return await store.users.create_user(**fields)

    return make
