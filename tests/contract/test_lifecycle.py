"""Store lifecycle on every backend: ping, reopen, several instances over one data set."""
from __future__ import annotations

import asyncio
import os

import pytest

from store.base import Store
from store.errors import Conflict
from tests.contract.conftest import BACKENDS


def test_real_mongo_is_generated_only_with_mongo_url():
    assert ("mongo-real" in BACKENDS) == bool(os.environ.get("MONGO_URL"))
    assert BACKENDS == ["sqlite", "mongo-real" if os.environ.get("MONGO_URL") else "mongo-standin"]


async def test_backend_name_and_ping(store, backend):
    assert isinstance(store, Store)
    assert store.backend == backend.name.split("-")[0]
    await store.ping()


async def test_data_survives_close_and_reopen(backend):
    first = await backend.open()
    u = await first.users.create_user(email="k@example.com", username="k", password_hash="h")
    p = await first.projects.create_project(owner_id=u.id, name="Kept")
    await first.close()
    reopened = await backend.open()  # runs migrations / index creation again: idempotent
    try:
        assert await reopened.users.get_user(u.id) == u
        assert await reopened.projects.get_project(p.id) == p
        with pytest.raises(Conflict, match="email is already taken"):
            await reopened.users.create_user(email="K@example.com", username="k2",
                                             password_hash=None)
    finally:
        await reopened.close()


async def test_two_instances_see_each_others_writes(backend, store):
    other = await backend.open()
    try:
        a = await store.users.create_user(email="a@example.com", username="a", password_hash="h")
        b = await other.users.create_user(email="b@example.com", username="b", password_hash="h")
        assert await other.users.get_user(a.id) == a
        assert await store.users.get_user(b.id) == b
        p = await other.projects.create_project(owner_id=a.id, name="Shared")
        await store.projects.set_member(p.id, b.id, "editor")
        assert await other.projects.get_member_role(p.id, b.id) == "editor"
        counts = await asyncio.gather(store.users.count_users(), other.users.count_users())
        assert counts == [2, 2]
    finally:
        await other.close()
