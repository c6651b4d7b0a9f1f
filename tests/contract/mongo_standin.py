"""Strict: documents, filters, updates, pipelines and projections go through bson.encode/decode
with production's CodecOptions (store.mongo.CLIENT_OPTIONS), and so does every result.
Real server: MONGO_URL=mongodb://HOST:27017 .venv/bin/pytest tests/contract runs the backend there.

An async facade over mongomock: the AsyncMongoClient subset ``store.mongo`` uses.

What goes in is what the driver would put on the wire: ``bson.encode`` refuses what BSON cannot
hold (``Decimal``, ``set``, custom objects, ints past 64 bits, non-string keys, NUL in a key,
a native ``uuid.UUID`` with the unspecified uuidRepresentation) with the driver's own errors,
and mongomock only sees the decoded copy. What comes out is decoded as the driver decodes
(aware UTC datetimes, since production sets tz_aware; milliseconds; lists, never tuples).
The driver's client-side checks are repeated (an update made of operators, an insert above
16 MiB), and so are the server's refusals of a key where MongoDB 5.0+ refuses one
(``WriteError``, or ``OperationFailure`` from findAndModify, with the server's code): a
``$``-prefixed top-level field written by an update to an existing document (52), an empty
field name in an update path (56), an ``_id`` that is an array or a regex (2) or holds
``$``-prefixed fields (52); mongomock's own refusal of an unknown ``$`` operator in a filter is
given the server's code (2). Keys containing ``.`` and nested ``$`` keys are stored, as MongoDB
5.0+ stores them; mongomock alone is stricter than the server for a top-level ``$`` key on
insert. Not repeated: the server's 16 MiB limit on a document an update makes larger.

Every call first yields to the event loop, as a network round trip would, so a backend that
splits a read-modify-write over two calls can be interleaved and caught by the concurrency
tests; each mongomock call itself runs whole, like one single-document operation on a server.

Methods outside the subset raise AttributeError, so the backend cannot quietly start depending
on something the stand-in was never checked against.

Where mongomock falls short of MongoDB, the stand-in does it instead: ``find_one_and_update``
keeps the filter's array match for a positional ``$`` update (mongomock re-targets by _id
alone), and a duplicate key error carries the server's details (``keyPattern``, ``keyValue``,
the index name in ``errmsg``). Still missing in mongomock: positional projection
(``"members.$"``), ``array_filters``, ``$mergeObjects`` in pipeline updates, ``$replaceWith``
(``$replaceRoot`` works).

``StandinGridFSBucket`` does the same for GridFS: the AsyncGridFSBucket subset
``store.blobs.gridfs`` calls, over pymongo's sync GridFSBucket on the mongomock database.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import bson
import mongomock
import pymongo
from bson.codec_options import CodecOptions
from bson.objectid import ObjectId
from bson.regex import Regex
from mongomock import helpers as mongomock_helpers
from pymongo import ReturnDocument, common
from pymongo.errors import (
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    WriteError,
)
from pymongo.helpers_shared import _fields_list_to_dict, _index_list
from pymongo.results import InsertManyResult, InsertOneResult

from store.mongo import CLIENT_OPTIONS

#: MongoDB's maxBsonObjectSize.
MAX_BSON_SIZE = 16 * 1024 * 1024
#: Server error codes the stand-in raises itself.
BAD_VALUE, DOLLAR_PREFIXED_FIELD_NAME, EMPTY_FIELD_NAME, DUPLICATE_KEY = 2, 52, 56, 11000
CODE_NAMES = {BAD_VALUE: "BadValue", DOLLAR_PREFIXED_FIELD_NAME: "DollarPrefixedFieldName",
              EMPTY_FIELD_NAME: "EmptyFieldName", DUPLICATE_KEY: "DuplicateKey"}


def production_codec_options() -> CodecOptions:
    """The CodecOptions a client built like production's has (no connection is made)."""
    client = pymongo.MongoClient("mongodb://127.0.0.1:1", connect=False, **CLIENT_OPTIONS)
    try:
        return client.codec_options
    finally:
        client.close()


CODEC = production_codec_options()


def _send(doc: Mapping, *, top_level: bool = False) -> dict:
    """``doc`` as the server receives it: encoded by the driver (which refuses what BSON
    cannot hold), decoded on the other side. Filters, updates, stages, projections and sorts
    travel inside a command, in their own key order; a document to insert travels on its
    own, ``_id`` first."""
    if top_level:
        return bson.decode(bson.encode(doc, codec_options=CODEC), codec_options=CODEC)
    return bson.decode(bson.encode({"v": doc}, codec_options=CODEC), codec_options=CODEC)["v"]


def _receive(doc: Mapping | None) -> dict | None:
    """A stored document as the driver hands it back."""
    if doc is None:
        return None
    return bson.decode(bson.encode(doc, codec_options=CODEC), codec_options=CODEC)


def _send_filter(flt: Any) -> dict:
    if flt is None:
        return {}
    common.validate_is_mapping("filter", flt)
    return _send(flt)


def _send_projection(projection: Any) -> dict | None:
    if projection is None:
        return None
    return _send(_fields_list_to_dict(projection, "projection"))


def _send_pipeline(pipeline: Any) -> list[dict]:
    common.validate_list("pipeline", pipeline)
    return [_send(stage) for stage in pipeline]


def _send_sort(sort: Any) -> list[tuple] | None:
    if sort is None:
        return None
    keys = _index_list(sort)
    return list(_send(dict(keys)).items())


# -- the server's own refusals ---------------------------------------------------------------

def _server_error(code: int, errmsg: str, *, command: bool) -> OperationFailure:
    """The error PyMongo raises for a server refusal: WriteError for a write command's
    write error, OperationFailure for a failed command (findAndModify)."""
    if command:
        return OperationFailure(errmsg, code, {"ok": 0.0, "errmsg": errmsg, "code": code,
                                               "codeName": CODE_NAMES[code]})
    return WriteError(errmsg, code, {"index": 0, "code": code, "errmsg": errmsg})


def _check_id(doc: Mapping) -> None:
    """The server's rules for the ``_id`` of a document to insert."""
    if "_id" not in doc:
        return
    value = doc["_id"]
    if isinstance(value, (list, Regex)):
        kind = "an array" if isinstance(value, list) else "a regex"
        raise _server_error(BAD_VALUE, f"can't use {kind} for _id", command=False)
    if isinstance(value, Mapping):
        dollar = _first_dollar_key(value, "_id")
        if dollar is not None:
            raise _server_error(
                DOLLAR_PREFIXED_FIELD_NAME,
                f"_id fields may not contain '$'-prefixed fields: The dollar ($) prefixed field "
                f"'{dollar[0]}' in '{dollar[1]}' is not valid for storage.", command=False)


def _first_dollar_key(doc: Mapping, path: str) -> tuple[str, str] | None:
    for key, value in doc.items():
        if key.startswith("$"):
            return key, f"{path}.{key}"
        if isinstance(value, Mapping):
            found = _first_dollar_key(value, f"{path}.{key}")
            if found:
                return found
    return None


def _update_paths(update: Mapping):
    for operator, fields in update.items():
        if not isinstance(fields, Mapping):
            continue  # mongomock refuses it in its own words
        for path, value in fields.items():
            yield path
            if operator == "$rename" and isinstance(value, str):
                yield value


def _check_update(update: Any, *, inserting: bool, command: bool) -> None:
    """What the server refuses in an update document: empty field names in a path, and
    (MongoDB 5.0+) a ``$``-prefixed top-level field unless the update inserts (upsert)."""
    if isinstance(update, list):
        return  # pipeline updates: mongomock validates the stages
    for path in _update_paths(update):
        if path == "":
            raise _server_error(EMPTY_FIELD_NAME, "An empty update path is not valid.",
                                command=command)
        parts = path.split(".")
        if "" in parts:
            raise _server_error(
                EMPTY_FIELD_NAME,
                f"The update path '{path}' contains an empty field name, which is not allowed.",
                command=command)
        if parts[0].startswith("$") and not inserting:
            raise _server_error(
                DOLLAR_PREFIXED_FIELD_NAME,
                f"The dollar ($) prefixed field '{parts[0]}' in '{path}' is not allowed in the "
                f"context of an update's replacement document. Consider using an aggregation "
                f"pipeline with $replaceWith.", command=command)


def _run(method, *args, command: bool, **kwargs):
    """A mongomock call, its codeless query errors given the server's code: an unknown
    operator is BadValue (2), a write error for a write command, else a command failure."""
    try:
        return method(*args, **kwargs)
    except OperationFailure as exc:
        if exc.code is None and str(exc).startswith("unknown "):
            raise _server_error(BAD_VALUE, str(exc), command=command) from None
        raise


def _check_size(doc: Mapping) -> None:
    size = len(bson.encode(doc, codec_options=CODEC))
    if size > MAX_BSON_SIZE:
        raise DocumentTooLarge(f"BSON document too large ({size} bytes) - the connected server "
                               f"supports BSON document sizes up to {MAX_BSON_SIZE} bytes.")


def _dup_key_text(key_value: dict) -> str:
    return "{ " + ", ".join(f"{k}: {json.dumps(v, default=str)}"
                            for k, v in key_value.items()) + " }"


def _duplicate(collection: mongomock.Collection, index_name: str, key_pattern: dict,
               key_value: dict) -> DuplicateKeyError:
    errmsg = (f"E11000 duplicate key error collection: {collection.full_name} index: "
              f"{index_name} dup key: {_dup_key_text(key_value)}")
    return DuplicateKeyError(errmsg, DUPLICATE_KEY, {
        "index": 0, "code": DUPLICATE_KEY, "errmsg": errmsg, "keyPattern": key_pattern,
        "keyValue": key_value})


def _as_command_error(exc: DuplicateKeyError) -> DuplicateKeyError:
    """The same duplicate as a failed findAndModify reports it."""
    details = {k: v for k, v in (exc.details or {}).items() if k != "index"}
    details.update(ok=0.0, codeName="DuplicateKey")
    return DuplicateKeyError(str(exc), exc.code, details)


def _ensure_uniques_with_details(collection: mongomock.Collection):
    """mongomock's unique-index check (the new document is already in the store), raising
    the server's DuplicateKeyError: which index, its key pattern, the duplicate value."""

    def ensure(new_data: dict) -> None:
        for name, index in collection._store.indexes.items():
            if not index.get("unique"):
                continue
            keys = index.get("key")
            values = {}
            for key, _ in keys:
                try:
                    values[key] = mongomock_helpers.get_value_by_dot(new_data, key)
                except KeyError:
                    values[key] = None
            if index.get("sparse") and set(values.values()) == {None}:
                continue
            query: dict = dict(values)
            partial = index.get("partialFilterExpression")
            if partial is not None:
                query = {"$and": [partial, query]}
            if len(list(collection._iter_documents(query))) > 1:
                raise _duplicate(collection, name, dict(keys), values)

    return ensure


# -- cursors -----------------------------------------------------------------------------------

class StandinCursor:
    """AsyncCursor: the query is sent (and encoded) at the first fetch, as the driver does."""

    def __init__(self, collection: mongomock.Collection, flt: Any, projection: Any):
        common.validate_is_mapping("filter", flt if flt is not None else {})
        self._collection = collection
        self._filter, self._projection = flt, projection
        self._sort: list | None = None
        self._limit = 0
        self._cursor = None

    def _check_unsent(self) -> None:
        if self._cursor is not None:
            raise pymongo.errors.InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list, direction=None) -> StandinCursor:
        self._check_unsent()
        self._sort = _index_list(key_or_list, direction)
        return self

    def limit(self, n: int) -> StandinCursor:
        self._check_unsent()
        if not isinstance(n, int):
            raise TypeError("limit must be an integer")
        self._limit = n
        return self

    def batch_size(self, n: int) -> StandinCursor:
        if not isinstance(n, int) or n < 0:
            raise ValueError("batch_size must be a non-negative integer")
        return self

    def _open(self):
        if self._cursor is None:
            cursor = self._collection.find(_send_filter(self._filter),
                                           _send_projection(self._projection))
            if self._sort:
                cursor.sort(_send_sort(self._sort))
            if self._limit:
                cursor.limit(self._limit)
            self._cursor = cursor
        return self._cursor

    async def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()

    async def to_list(self, length: int | None = None) -> list[dict]:
        await asyncio.sleep(0)
        docs = [_receive(d) for d in _run(list, self._open(), command=True)]
        return docs if length is None else docs[:length]

    def __aiter__(self) -> StandinCursor:
        return self

    async def __anext__(self) -> dict:
        await asyncio.sleep(0)
        try:
            return _receive(_run(next, self._open(), command=True))
        except StopIteration:
            raise StopAsyncIteration from None


class StandinCommandCursor:
    """AsyncCommandCursor over an aggregate's results (already run, as the first batch is)."""

    def __init__(self, docs: list[dict]):
        self._docs = iter(docs)

    async def to_list(self, length: int | None = None) -> list[dict]:
        await asyncio.sleep(0)
        docs = list(self._docs)
        return docs if length is None else docs[:length]

    async def close(self) -> None:
        self._docs = iter(())

    def __aiter__(self) -> StandinCommandCursor:
        return self

    async def __anext__(self) -> dict:
        await asyncio.sleep(0)
        try:
            return next(self._docs)
        except StopIteration:
            raise StopAsyncIteration from None


# -- collection, database, client ----------------------------------------------------------

class StandinCollection:
    def __init__(self, collection: mongomock.Collection):
        self._collection = collection
        collection._ensure_uniques = _ensure_uniques_with_details(collection)
        self.name = collection.name
        self.full_name = collection.full_name

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the mongomock stand-in does not offer Collection.{name}")

    # -- reads --

    def find(self, filter=None, projection=None) -> StandinCursor:
        return StandinCursor(self._collection, filter, projection)

    async def find_one(self, filter=None, projection=None, sort=None) -> dict | None:
        await asyncio.sleep(0)
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        return _receive(_run(self._collection.find_one, _send_filter(filter),
                             _send_projection(projection), sort=_send_sort(sort), command=True))

    async def count_documents(self, filter) -> int:
        await asyncio.sleep(0)
        return _run(self._collection.count_documents, _send_filter(filter), command=True)

    async def aggregate(self, pipeline, **kwargs) -> StandinCommandCursor:
        await asyncio.sleep(0)
        stages = _send_pipeline(pipeline)
        docs = _run(lambda: list(self._collection.aggregate(stages, **kwargs)), command=True)
        return StandinCommandCursor([_receive(d) for d in docs])

    # -- writes --

    def _insert(self, doc: dict) -> Any:
        """One document, already encoded; the server's checks, then mongomock's insert."""
        _check_size(doc)
        _check_id(doc)
        if self._collection.find_one({"_id": doc["_id"]}, {"_id": 1}) is not None:
            raise _duplicate(self._collection, "_id_", {"_id": 1}, {"_id": doc["_id"]})
        return self._collection.insert_one(doc).inserted_id

    async def insert_one(self, document) -> InsertOneResult:
        await asyncio.sleep(0)
        common.validate_is_document_type("document", document)
        if "_id" not in document:
            document["_id"] = ObjectId()  # the driver sets it on the caller's document
        return InsertOneResult(self._insert(_send(document, top_level=True)), True)

    async def insert_many(self, documents, ordered: bool = True) -> InsertManyResult:
        await asyncio.sleep(0)
        if not isinstance(documents, list) or not documents:
            raise TypeError("documents must be a non-empty list")
        for document in documents:
            common.validate_is_document_type("document", document)
            if "_id" not in document:
                document["_id"] = ObjectId()
        # A document BSON cannot hold stops the whole batch before anything is written.
        sent = [_send(d, top_level=True) for d in documents]
        for doc in sent:
            _check_size(doc)
        inserted, errors = 0, []
        for i, doc in enumerate(sent):
            try:
                self._insert(doc)
                inserted += 1
            except WriteError as exc:
                errors.append({**(exc.details or {"code": exc.code, "errmsg": str(exc)}),
                               "index": i, "op": doc})
                if ordered:
                    break
        if errors:
            raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": [],
                                  "nInserted": inserted, "nUpserted": 0, "nMatched": 0,
                                  "nModified": 0, "nRemoved": 0, "upserted": []})
        return InsertManyResult([d["_id"] for d in documents], True)

    def _inserting(self, flt: dict, upsert: bool) -> bool:
        return upsert and _run(self._collection.find_one, flt, {"_id": 1},
                               command=False) is None

    def _send_update(self, flt, update, upsert: bool, *, command: bool) -> tuple[dict, Any]:
        common.validate_ok_for_update(update)
        flt = _send_filter(flt)
        update = _send_pipeline(update) if isinstance(update, list) else _send(update)
        _check_update(update, inserting=self._inserting(flt, upsert), command=command)
        return flt, update

    async def update_one(self, filter, update, upsert: bool = False):
        await asyncio.sleep(0)
        flt, update = self._send_update(filter, update, upsert, command=False)
        return _run(self._collection.update_one, flt, update, upsert=upsert, command=False)

    async def update_many(self, filter, update, upsert: bool = False):
        await asyncio.sleep(0)
        flt, update = self._send_update(filter, update, upsert, command=False)
        return _run(self._collection.update_many, flt, update, upsert=upsert, command=False)

    async def find_one_and_update(self, filter, update, projection=None, sort=None,
                                  upsert: bool = False,
                                  return_document: bool = ReturnDocument.BEFORE) -> dict | None:
        await asyncio.sleep(0)
        if not isinstance(return_document, bool):
            raise ValueError("return_document must be ReturnDocument.BEFORE or "
                             "ReturnDocument.AFTER")
        flt, update = self._send_update(filter, update, upsert, command=True)
        projection, sort = _send_projection(projection), _send_sort(sort)
        col = self._collection
        old = _run(col.find_one, flt, sort=sort, command=True)
        try:
            if old is None:
                if not upsert:
                    return None
                upserted = col.update_one(flt, update, upsert=True).upserted_id
                return (_receive(col.find_one({"_id": upserted}, projection))
                        if return_document else None)
            before = col.find_one({"_id": old["_id"]}, projection)
            # The filter stays, so a positional "$" update finds the array element it matched.
            if "_id" not in flt:
                target = {**flt, "_id": old["_id"]}
            else:
                target = {**flt, "$and": [*flt.get("$and", []), {"_id": old["_id"]}]}
            col.update_one(target, update)
        except DuplicateKeyError as exc:
            raise _as_command_error(exc) from None
        return _receive(col.find_one({"_id": old["_id"]}, projection)
                        if return_document else before)

    async def find_one_and_delete(self, filter, projection=None, sort=None) -> dict | None:
        await asyncio.sleep(0)
        return _receive(_run(self._collection.find_one_and_delete, _send_filter(filter),
                             _send_projection(projection), sort=_send_sort(sort), command=True))

    async def delete_one(self, filter):
        await asyncio.sleep(0)
        return _run(self._collection.delete_one, _send_filter(filter), command=False)

    async def delete_many(self, filter):
        await asyncio.sleep(0)
        return _run(self._collection.delete_many, _send_filter(filter), command=False)

    # -- indexes --

    async def create_index(self, keys, **kwargs) -> str:
        await asyncio.sleep(0)
        if "partialFilterExpression" in kwargs:
            kwargs["partialFilterExpression"] = _send(kwargs["partialFilterExpression"])
        return self._collection.create_index(_index_list(keys), **kwargs)

    async def index_information(self) -> dict:
        await asyncio.sleep(0)
        return self._collection.index_information()


class StandinDatabase:
    def __init__(self, database: mongomock.Database):
        self._database = database
        self.name = database.name

    def __getitem__(self, name: str) -> StandinCollection:
        return StandinCollection(self._database[name])

    get_collection = __getitem__

    async def command(self, command, **kwargs) -> dict:
        await asyncio.sleep(0)
        if isinstance(command, Mapping):
            command = _send(command)
        return _receive(self._database.command(command, **kwargs))


class StandinClient:
    """Wraps one mongomock client; several stand-ins over the same one share its data,
    as several server instances share one MongoDB. Results look the same whatever the
    mongomock client's own tz_aware: the production codec decodes them."""

    def __init__(self, sync: mongomock.MongoClient | None = None):
        self.sync = sync if sync is not None else mongomock.MongoClient()
        self.codec_options = CODEC
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

    def __init__(self, database: StandinDatabase | mongomock.Database,
                 bucket_name: str = "blobs"):
        sync = database._database if isinstance(database, StandinDatabase) else database
        self._bucket = _sync_gridfs_bucket(sync, bucket_name)

    def open_upload_stream_with_id(self, file_id: Any, filename: str, **kwargs) -> StandinGridIn:
        # What the driver would encode into the files document.
        _send({"_id": file_id, "filename": filename, **kwargs})
        return StandinGridIn(self._bucket.open_upload_stream_with_id(file_id, filename,
                                                                     **kwargs))

    async def open_download_stream(self, file_id: Any) -> StandinGridOut:
        await asyncio.sleep(0)
        _send({"_id": file_id})
        return StandinGridOut(self._bucket.open_download_stream(file_id))

    async def delete(self, file_id: Any) -> None:
        await asyncio.sleep(0)
        _send({"_id": file_id})
        self._bucket.delete(file_id)
