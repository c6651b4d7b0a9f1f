"""The mongomock stand-in: a translation with real pymongo errors and no extra surface, and
strict where the driver and the server are.

The refusal tests run on the stand-in, and with MONGO_URL set on a real server as well, so one
assertion shows the stand-in answers as MongoDB does. Each ``test_mutant_*`` removes one
strictness step of the stand-in (encoding what goes in, decoding what comes out, the server's
checks) and shows the same input then gets through mongomock, or gets mongomock's answer
instead of the server's: the refusal tests test the stand-in's strictness, not mongomock's.
"""
from __future__ import annotations

import asyncio
import decimal
import uuid
from datetime import UTC, datetime, timedelta, timezone

import mongomock
import pymongo.errors
import pytest
from bson.errors import InvalidDocument
from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
)

from store.mongo import CLIENT_OPTIONS
from tests.contract import mongo_standin
from tests.contract.conftest import MONGO_URL
from tests.contract.mongo_standin import StandinClient

TARGETS = ["mongo-standin"] + (["mongo-real"] if MONGO_URL else [])
AFTER = ReturnDocument.AFTER


@pytest.fixture(params=TARGETS)
async def col(request):
    """A fresh collection on the stand-in, or on the real server."""
    if request.param == "mongo-standin":
        yield StandinClient()["standin"]["c"]
        return
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(MONGO_URL, **CLIENT_OPTIONS)
    name = f"standin_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["c"]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
def standin_col():
    return StandinClient()["standin"]["c"]


# -- values BSON cannot hold --------------------------------------------------------------------

class Thing:
    """An object of the application's own: no BSON type."""


BAD_VALUES = {"decimal": decimal.Decimal("1.10"), "set": {1, 2}, "object": Thing()}

#: Each puts a value where the driver must encode it. The flag: refused even without the
#: stand-in's encode step (mongomock encodes inserts and $set values itself, and a stage's
#: output is decoded on the way back); the others only the stand-in's codec refuses.
OPERATIONS = {
    "insert_one": (True, lambda c, v: c.insert_one({"v": v})),
    "insert_many": (True, lambda c, v: c.insert_many([{"v": 1}, {"v": v}])),
    "update_one-$set": (True, lambda c, v: c.update_one({"_id": 1}, {"$set": {"v": v}})),
    "update_one-upsert": (True, lambda c, v: c.update_one({"_id": 9}, {"$push": {"v": v}},
                                                          upsert=True)),
    "update_one-$push": (False, lambda c, v: c.update_one({"_id": 1}, {"$push": {"v": v}})),
    "update_many-filter": (False, lambda c, v: c.update_many({"n": v}, {"$set": {"m": 1}})),
    "find-filter": (False, lambda c, v: c.find({"n": {"$ne": v}}).to_list(None)),
    "find_one-filter": (False, lambda c, v: c.find_one({"_id": 1, "n": {"$ne": v}})),
    "count_documents-filter": (False, lambda c, v: c.count_documents({"n": v})),
    "delete_many-filter": (False, lambda c, v: c.delete_many({"n": v})),
    "find_one_and_update-$set": (True, lambda c, v: c.find_one_and_update(
        {"_id": 1}, {"$set": {"v": v}})),
    "find_one_and_update-$addToSet": (False, lambda c, v: c.find_one_and_update(
        {"_id": 1}, {"$addToSet": {"v": v}})),
    "find_one_and_update-filter": (False, lambda c, v: c.find_one_and_update(
        {"n": v}, {"$set": {"m": 1}})),
    "aggregate-$match": (False, lambda c, v: c.aggregate([{"$match": {"n": v}}])),
    "aggregate-$addFields": (True, lambda c, v: c.aggregate([{"$addFields": {"w": v}}])),
}
CASES = [pytest.param(op, value, id=f"{op}-{name}")
         for op in OPERATIONS for name, value in BAD_VALUES.items()]
MUTANT_CASES = [case for case in CASES if not OPERATIONS[case.values[0]][0]]


async def _seed(c) -> None:
    await c.insert_one({"_id": 1, "n": 1})


async def _answer(call) -> int | str:
    """What a caller sees: "ok", the server's error code, or the exception's type."""
    try:
        await call
    except OperationFailure as exc:
        return exc.code
    except Exception as exc:  # noqa: BLE001 - the answer is the point
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("op,value", CASES)
async def test_values_bson_cannot_hold_are_refused(col, op, value):
    await _seed(col)
    with pytest.raises(InvalidDocument, match="cannot encode object"):
        await OPERATIONS[op][1](col, value)
    assert await col.find({}).to_list(None) == [{"_id": 1, "n": 1}]  # nothing written


@pytest.mark.parametrize("op,value", MUTANT_CASES)
async def test_mutant_without_the_codec_mongomock_takes_them(standin_col, monkeypatch, op, value):
    monkeypatch.setattr(mongo_standin, "_send", lambda doc, top_level=False: doc)
    await _seed(standin_col)
    assert await _answer(OPERATIONS[op][1](standin_col, value)) == "ok"

@pytest.mark.parametrize("doc,error", [
    ({"a\0b": 1}, InvalidDocument),  # NUL in a key
    ({"v": {1: "x"}}, InvalidDocument),  # a key that is not a string
    ({"v": 2 ** 64}, OverflowError),  # past 64 bits
    ({"v": uuid.uuid4()}, ValueError),  # uuidRepresentation is unspecified in production
], ids=["nul-key", "int-key", "int-overflow", "native-uuid"])
async def test_keys_and_numbers_bson_cannot_hold_are_refused(col, doc, error):
    await _seed(col)
    with pytest.raises(error):
        await col.insert_one(dict(doc))
    with pytest.raises(error):
        await col.update_one({"_id": 1}, {"$set": doc})
    assert await col.find_one({"_id": 1}) == {"_id": 1, "n": 1}


async def test_a_document_over_16_mib_is_refused(col):
    with pytest.raises(DocumentTooLarge):
        await col.insert_one({"v": "x" * (16 * 1024 * 1024)})


# -- keys the server refuses --------------------------------------------------------------------

#: What the server refuses, and its code: the stand-in's own checks give these answers.
KEY_CASES = {
    "$set-dollar-field": (lambda c: c.update_one({"_id": 1}, {"$set": {"$x": 1}}), {52}),
    "findAndModify-dollar-field": (
        lambda c: c.find_one_and_update({"_id": 1}, {"$set": {"$x": 1}}), {52}),
    "empty-field-inside": (lambda c: c.update_one({"_id": 1}, {"$set": {"a..b": 1}}), {56}),
    "empty-field-last": (lambda c: c.update_one({"_id": 1}, {"$set": {"a.": 1}}), {56}),
    "empty-field-first": (lambda c: c.update_many({}, {"$inc": {".a": 1}}), {56}),
    "id-with-dollar-field": (lambda c: c.insert_one({"_id": {"$x": 1}}), {52}),
    "id-array": (lambda c: c.insert_one({"_id": [1, 2]}), {2, 53}),  # 53 on newer servers
    "unknown-top-level-operator": (lambda c: c.find({"$nope": 1}).to_list(None), {2}),
    "unknown-operator": (lambda c: c.count_documents({"n": {"$nope": 1}}), {2}),
}


@pytest.mark.parametrize("case", KEY_CASES)
async def test_keys_the_server_refuses_are_refused_with_its_code(col, case):
    await _seed(col)
    call, codes = KEY_CASES[case]
    assert await _answer(call(col)) in codes
    assert await col.find({}).to_list(None) == [{"_id": 1, "n": 1}]  # nothing written


@pytest.mark.parametrize("case", KEY_CASES)
async def test_mutant_without_the_servers_checks_mongomock_answers_otherwise(
        standin_col, monkeypatch, case):
    monkeypatch.setattr(mongo_standin, "_check_update", lambda *a, **k: None)
    monkeypatch.setattr(mongo_standin, "_check_id", lambda *a, **k: None)
    monkeypatch.setattr(mongo_standin, "_run",
                        lambda method, *a, command, **k: method(*a, **k))
    await _seed(standin_col)
    call, codes = KEY_CASES[case]
    assert await _answer(call(standin_col)) not in codes


async def test_dots_and_nested_dollars_in_stored_keys_are_kept_as_mongodb_5_keeps_them(col):
    """MongoDB 5.0+ stores these (only queries cannot reach them): the stand-in too."""
    await col.insert_one({"_id": 1, "vals": {"p.n.l": 1, "$x": 2}})
    await col.update_one({"_id": 1}, {"$set": {"more": {"a.b": 3}}})
    assert await col.find_one({"_id": 1}) == {"_id": 1, "vals": {"p.n.l": 1, "$x": 2},
                                              "more": {"a.b": 3}}


# -- what comes back ----------------------------------------------------------------------------

NAIVE = datetime(2024, 5, 1, 10, 0, 0, 123456)
AWARE = datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))


async def test_results_are_decoded_as_the_production_driver_decodes_them(col):
    await col.insert_one({"_id": 1, "naive": NAIVE, "aware": AWARE, "pair": (1, 2),
                          "big": 2 ** 40})
    await col.update_one({"_id": 1}, {"$set": {"later": NAIVE}})
    doc = await col.find_one({"_id": 1})
    # tz_aware: every datetime is aware UTC, a naive one taken as UTC; milliseconds only.
    assert doc["naive"] == doc["later"] == NAIVE.replace(microsecond=123000, tzinfo=UTC)
    assert doc["aware"] == datetime(2024, 5, 1, 10, 0, 0, 999000, tzinfo=UTC)
    assert doc["aware"].utcoffset() == timedelta(0)
    with pytest.raises(TypeError, match="naive"):  # mixing naive and aware fails, as in production
        assert doc["naive"] < NAIVE
    assert doc["pair"] == [1, 2]
    assert type(doc["big"]) is Int64
    assert await col.count_documents({"naive": {"$lte": NAIVE}}) == 1  # naive = UTC in a query


async def test_mutant_without_decoding_results_come_back_as_mongomock_keeps_them(monkeypatch):
    monkeypatch.setattr(mongo_standin, "_receive", lambda doc: doc)
    c = StandinClient(mongomock.MongoClient())["standin"]["c"]
    await c.insert_one({"_id": 1, "naive": NAIVE, "big": 2 ** 40, "pair": (1, 2)})
    doc = await c.find_one({"_id": 1})
    assert doc["naive"].tzinfo is None and doc["naive"] < NAIVE  # no TypeError
    assert type(doc["big"]) is Int64  # this one BSON made on the way in


async def test_an_inserted_document_gets_its_id_like_the_driver_sets_it(col):
    doc = {"n": 1}
    result = await col.insert_one(doc)
    assert doc["_id"] == result.inserted_id
    docs = [{"n": 2}, {"n": 3}]
    result = await col.insert_many(docs)
    assert [d["_id"] for d in docs] == result.inserted_ids


# -- duplicate keys -----------------------------------------------------------------------------

async def test_duplicate_keys_raise_pymongos_own_error_with_the_servers_details(col):
    await col.create_index("k", unique=True, name="k_unique")
    await col.insert_one({"_id": 1, "k": "a"})
    await col.insert_one({"_id": 2, "k": "b"})
    with pytest.raises(DuplicateKeyError) as dup:
        await col.insert_one({"_id": 3, "k": "a"})
    assert dup.value.details["keyPattern"] == {"k": 1}
    assert dup.value.details["keyValue"] == {"k": "a"}
    assert "index: k_unique" in dup.value.details["errmsg"]
    with pytest.raises(DuplicateKeyError) as dup:
        await col.insert_one({"_id": 1, "k": "c"})
    assert dup.value.details["keyPattern"] == {"_id": 1}
    with pytest.raises(DuplicateKeyError) as dup:
        await col.update_one({"_id": 2}, {"$set": {"k": "a"}})
    assert dup.value.details["keyPattern"] == {"k": 1}
    with pytest.raises(DuplicateKeyError) as dup:
        await col.find_one_and_update({"_id": 2}, {"$set": {"k": "a"}})
    assert dup.value.details["keyPattern"] == {"k": 1}
    assert await col.find_one({"_id": 2}) == {"_id": 2, "k": "b"}


async def test_insert_many_unordered_reports_each_duplicate_and_keeps_the_rest(col):
    await col.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as failed:
        await col.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}], ordered=False)
    errors = failed.value.details["writeErrors"]
    assert [(e["index"], e["code"], e["keyPattern"]) for e in errors] == [
        (0, 11000, {"_id": 1}), (2, 11000, {"_id": 1})]
    assert failed.value.details["nInserted"] == 2
    assert await col.count_documents({}) == 3
    with pytest.raises(BulkWriteError) as failed:
        await col.insert_many([{"_id": 4}, {"_id": 4}, {"_id": 5}])  # ordered: stops
    assert failed.value.details["nInserted"] == 1
    assert await col.count_documents({}) == 4


# -- what the backend uses ----------------------------------------------------------------------

async def test_find_one_and_update_keeps_the_positional_match(col):
    members = [{"userId": "a", "role": "owner"}, {"userId": "b", "role": "viewer"}]
    await col.insert_one({"_id": 1, "members": members})
    doc = await col.find_one_and_update({"_id": 1, "members.userId": "b"},
                                        {"$set": {"members.$.role": "editor"}},
                                        return_document=AFTER)
    assert doc["members"] == [{"userId": "a", "role": "owner"},
                              {"userId": "b", "role": "editor"}]
    before = await col.find_one_and_update({"members.userId": "b"},
                                           {"$set": {"members.$.role": "owner"}},
                                           projection={"_id": 0, "members": 1})
    assert before == {"members": doc["members"]}
    assert (await col.find_one({"_id": 1}))["members"][1]["role"] == "owner"


async def test_find_one_and_update_sorts_upserts_and_projects(col):
    for i, key in enumerate("cab"):
        await col.insert_one({"_id": i, "q": key, "state": "queued"})
    doc = await col.find_one_and_update({"state": "queued"}, {"$set": {"state": "running"}},
                                        sort=[("q", 1)], projection={"q": 1},
                                        return_document=AFTER)
    assert doc == {"_id": 1, "q": "a"}
    assert await col.find_one_and_update({"_id": 9}, {"$set": {"n": 1}}, upsert=True) is None
    assert await col.find_one_and_update({"_id": 8}, {"$set": {"n": 2}}, upsert=True,
                                         return_document=AFTER) == {"_id": 8, "n": 2}
    assert await col.find_one_and_update({"_id": 7}, {"$set": {"n": 3}}) is None


async def test_aggregate_groups_and_replaces_the_root(col):
    for seq, (row, after) in enumerate([("a", 1), ("b", 2), ("a", None), ("b", 3)], 1):
        await col.insert_one({"seq": seq, "rowId": row, "after": after})
    cursor = await col.aggregate([
        {"$sort": {"seq": -1}},
        {"$group": {"_id": "$rowId", "last": {"$first": "$$ROOT"}}},
        {"$match": {"last.after": {"$ne": None}}},
        {"$replaceRoot": {"newRoot": "$last"}},
        {"$project": {"_id": 0}},
    ])
    assert await cursor.to_list(None) == [{"seq": 4, "rowId": "b", "after": 3}]


async def test_methods_outside_the_subset_are_refused(standin_col):
    for name in ("bulk_write", "replace_one", "watch", "find_one_and_replace"):
        with pytest.raises(AttributeError, match="does not offer"):
            getattr(standin_col, name)


async def test_every_call_yields_to_the_loop(standin_col):
    """Otherwise a non-atomic read-then-write in the backend could never be interleaved."""
    col = standin_col
    await col.insert_one({"_id": 1, "n": 0})
    order = []

    async def read_then_write(name):
        doc = await col.find_one({"_id": 1})
        order.append(name)
        await col.update_one({"_id": 1}, {"$set": {"n": doc["n"] + 1}})

    await asyncio.gather(read_then_write("a"), read_then_write("b"))
    assert order == ["a", "b"]
    assert (await col.find_one({"_id": 1}))["n"] == 1  # the lost update a server would allow


async def test_cursor_sort_limit_and_iteration(col):
    for i in (3, 1, 2):
        await col.insert_one({"_id": i, "k": -i})
    assert await col.find({}).sort("_id", 1).limit(2).to_list(None) == [{"_id": 1, "k": -1},
                                                                         {"_id": 2, "k": -2}]
    assert [d["_id"] async for d in col.find({"_id": {"$gt": 1}}).sort("_id", -1)] == [3, 2]
    # A sort on several keys keeps their order (the _id key is not moved first).
    got = await col.find({}, {"k": 1}).sort([("k", 1), ("_id", 1)]).to_list(None)
    assert [d["_id"] for d in got] == [3, 2, 1]
    cursor = col.find({})
    await cursor.to_list(None)
    with pytest.raises(pymongo.errors.InvalidOperation):
        cursor.sort("_id", 1)
