"""The mongomock stand-in stays a translation: real pymongo errors, no extra surface."""
from __future__ import annotations

import asyncio

import pymongo.errors
import pytest

from tests.contract.mongo_standin import StandinClient


async def test_duplicate_keys_raise_pymongos_own_error():
    col = StandinClient()["t"]["c"]
    await col.create_index("k", unique=True)
    await col.insert_one({"_id": 1, "k": "a"})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        await col.insert_one({"_id": 2, "k": "a"})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        await col.insert_one({"_id": 1, "k": "b"})


async def test_methods_outside_the_subset_are_refused():
    col = StandinClient()["t"]["c"]
    with pytest.raises(AttributeError, match="does not offer"):
        col.bulk_write
    with pytest.raises(AttributeError):
        col.aggregate


async def test_every_call_yields_to_the_loop():
    """Otherwise a non-atomic read-then-write in the backend could never be interleaved."""
    col = StandinClient()["t"]["c"]
    await col.insert_one({"_id": 1, "n": 0})
    order = []

    async def read_then_write(name):
        doc = await col.find_one({"_id": 1})
        order.append(name)
        await col.update_one({"_id": 1}, {"$set": {"n": doc["n"] + 1}})

    await asyncio.gather(read_then_write("a"), read_then_write("b"))
    assert order == ["a", "b"]
    assert (await col.find_one({"_id": 1}))["n"] == 1  # the lost update a server would allow


async def test_cursor_sort_limit_and_iteration():
    col = StandinClient()["t"]["c"]
    for i in (3, 1, 2):
        await col.insert_one({"_id": i})
    assert await col.find({}).sort("_id", 1).limit(2).to_list(None) == [{"_id": 1}, {"_id": 2}]
    assert [d["_id"] async for d in col.find({"_id": {"$gt": 1}}).sort("_id", -1)] == [3, 2]
