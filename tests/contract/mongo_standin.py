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

Also missing in mongomock, so done here as the server does it: ``$text`` (in an aggregate's
first ``$match``, as MongoDB requires there) with ``{$meta: "textScore"}`` in the later stages,
and a final ``$merge`` stage. ``$text`` follows the server's parser and matcher
(src/mongo/db/fts): terms are ORed through the index, every "phrase" must be a case- and
diacritics-insensitive substring of an indexed field, ``-term`` / ``-"phrase"`` exclude; a
compound text index needs equality on its prefix fields; one text index per collection. Its
score is version 2+ scoring: per query term found, weight × Σ 1/2^k over the term's
occurrences × (0.5 × occurrences / tokens + 0.5), × 1.1 when the field is exactly the term.
Approximations: tokens split at white space, punctuation other than ``_`` and the
Pattern_Syntax ranges; case folding is ``str.lower`` and diacritics are the combining marks
of NFD; only ``default_language: "none"`` (no stemming, no stop words) is offered, and
``$caseSensitive`` / ``$diacriticSensitive`` must stay false.

``StandinGridFSBucket`` does the same for GridFS: the AsyncGridFSBucket subset
``store.blobs.gridfs`` calls, over pymongo's sync GridFSBucket on the mongomock database.
"""
from __future__ import annotations

import asyncio
import json
import unicodedata
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

    async def estimated_document_count(self) -> int:
        await asyncio.sleep(0)
        return _run(self._collection.estimated_document_count, command=True)

    async def distinct(self, key: str, filter=None) -> list:
        await asyncio.sleep(0)
        values = _run(self._collection.distinct, key, _send_filter(filter), command=True)
        return _receive({"values": values})["values"]  # the reply travels as one document

    async def aggregate(self, pipeline, **kwargs) -> StandinCommandCursor:
        await asyncio.sleep(0)
        stages = _send_pipeline(pipeline)
        docs = _run(lambda: _aggregate(self._collection, stages, kwargs), command=True)
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
        if any(kind == "text" for _, kind in _index_list(keys)):
            return _create_text_index(self._collection, _index_list(keys), kwargs)
        if "partialFilterExpression" in kwargs:
            kwargs["partialFilterExpression"] = _send(kwargs["partialFilterExpression"])
        return self._collection.create_index(_index_list(keys), **kwargs)

    async def index_information(self) -> dict:
        await asyncio.sleep(0)
        return self._collection.index_information()


# -- $text and $merge ---------------------------------------------------------------------

TEXT_SCORE = "__standinTextScore"
INDEX_NOT_FOUND, INDEX_OPTIONS_CONFLICT, NO_TEXT_SCORE = 27, 85, 40218
CODE_NAMES.update({INDEX_NOT_FOUND: "IndexNotFound",
                   INDEX_OPTIONS_CONFLICT: "IndexOptionsConflict"})

#: Pattern_Syntax outside ASCII (Unicode PropList), delimiters of the text tokenizer.
_PATTERN_SYNTAX = ((0xA1, 0xA7), (0xA9, 0xA9), (0xAB, 0xAC), (0xAE, 0xAE), (0xB0, 0xB1),
                   (0xB6, 0xB6), (0xBB, 0xBB), (0xBF, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7),
                   (0x2010, 0x2027), (0x2030, 0x203E), (0x2041, 0x2053), (0x2055, 0x205E),
                   (0x2190, 0x245F), (0x2500, 0x2775), (0x2794, 0x2BFF), (0x2E00, 0x2E7F),
                   (0x3001, 0x3003), (0x3008, 0x3020), (0x3030, 0x3030), (0xFD3E, 0xFD3F),
                   (0xFE45, 0xFE46))


def _text_delimiter(ch: str) -> bool:
    cp = ord(ch)
    if ch.isspace():
        return True
    if cp < 128:
        return not ch.isalnum() and ch != "_"
    if unicodedata.category(ch) in ("Pd", "Ps", "Pe", "Pi", "Pf", "Po"):
        return True
    return any(lo <= cp <= hi for lo, hi in _PATTERN_SYNTAX)


def _text_fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text.lower())
                   if unicodedata.category(ch) != "Mn")


def _text_tokens(text: str) -> list[str]:
    tokens, current = [], []
    for ch in text:
        if _text_delimiter(ch):
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        tokens.append("".join(current))
    return [t for t in (_text_fold(t) for t in tokens) if t]


def _text_index(collection: mongomock.Collection) -> dict | None:
    return getattr(collection._store, "standin_text_index", None)


def _create_text_index(collection: mongomock.Collection, keys: list, options: dict) -> str:
    options = dict(options)
    name = options.pop("name", "_".join(f"{k}_{v}" for k, v in keys))
    language = options.pop("default_language", "english")
    weights = options.pop("weights", {})
    if options:
        raise NotImplementedError(f"text index options {sorted(options)} are not emulated")
    if language != "none":
        raise NotImplementedError("the stand-in's $text does not stem: use "
                                  "default_language='none'")
    fields = [k for k, kind in keys if kind == "text"]
    spec = {"name": name, "key": keys, "language": language,
            "weights": {f: weights.get(f, 1) for f in fields},
            "prefix": [k for k, _ in keys[:[kind for _, kind in keys].index("text")]]}
    existing = _text_index(collection)
    if existing is not None:
        if existing == spec:
            return name
        raise OperationFailure(
            f"An equivalent index already exists with a different name and options, or only "
            f"one text index per collection is allowed: {existing['name']}",
            INDEX_OPTIONS_CONFLICT, {"ok": 0.0, "code": INDEX_OPTIONS_CONFLICT,
                                     "codeName": CODE_NAMES[INDEX_OPTIONS_CONFLICT]})
    collection._store.create_index(name, {"key": keys})
    collection._store.standin_text_index = spec
    return name


def _parse_text_search(search: str) -> tuple[set, set, list, list]:
    """FTSQueryImpl::parse: (positive terms, negated terms, positive phrases, negated
    phrases)."""
    positive: set[str] = set()
    negated: set[str] = set()
    phrases: list[str] = []
    negated_phrases: list[str] = []
    in_phrase = in_negation = False
    quote = 0
    previous_space = True
    i, n = 0, len(search)
    while i < n:
        ch = search[i]
        if ch == '"':
            if in_phrase:
                (negated_phrases if in_negation else phrases).append(search[quote + 1:i])
                in_negation = in_phrase = False
            else:
                in_phrase, quote = True, i
            previous_space = False
            i += 1
        elif ch == "-":
            if not in_phrase and previous_space:
                in_negation = True
            previous_space = False
            i += 1
        elif ch.isspace():
            previous_space = True
            i += 1
        else:
            end = i
            while end < n and search[end] not in '"-' and not search[end].isspace():
                end += 1
            if not (in_phrase and in_negation):
                (negated if in_negation else positive).update(_text_tokens(search[i:end]))
            if in_negation and not in_phrase:
                in_negation = False
            previous_space = False
            i = end
    return positive - negated, negated, phrases, negated_phrases


def _field_values(doc: dict, path: str) -> list[str]:
    try:
        value = mongomock_helpers.get_value_by_dot(doc, path)
    except KeyError:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _text_score(doc: dict, spec: dict, terms: set) -> float:
    """FTSSpec::scoreDocument (_scoreStringV2), summed over the query's terms."""
    scores: dict[str, float] = {}
    for field, weight in spec["weights"].items():
        for raw in _field_values(doc, field):
            tokens = _text_tokens(raw)
            counts: dict[str, int] = {}
            freq: dict[str, float] = {}
            for token in tokens:
                counts[token] = counts.get(token, 0) + 1
                freq[token] = freq.get(token, 0.0) + 1 / 2 ** (counts[token] - 1)
            for term, count in counts.items():
                coeff = 0.5 * count / len(tokens) + 0.5
                adjustment = 1.1 if raw.lower() == term else 1.0
                scores[term] = scores.get(term, 0.0) + weight * freq[term] * coeff * adjustment
    return sum(score for term, score in scores.items() if term in terms)


def _text_matches(doc: dict, spec: dict, query: tuple) -> bool:
    """FTSMatcher::matches, after the index found the document through a positive term."""
    positive, negated, phrases, negated_phrases = query
    values = [v for field in spec["weights"] for v in _field_values(doc, field)]
    tokens = {t for v in values for t in _text_tokens(v)}
    if not tokens & positive or tokens & negated:
        return False
    folded = [_text_fold(v) for v in values]
    if not all(any(_text_fold(p) in v for v in folded) for p in phrases):
        return False
    return not any(any(_text_fold(p) in v for v in folded) for p in negated_phrases)


def _uses_text_score(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("$meta") == "textScore":
            return True
        return any(_uses_text_score(v) for v in value.values())
    if isinstance(value, list):
        return any(_uses_text_score(v) for v in value)
    return False


def _with_text_score(value: Any) -> Any:
    """``{$meta: "textScore"}`` read from the hidden score field (descending in a sort)."""
    if isinstance(value, dict):
        if value == {"$meta": "textScore"}:
            return "$" + TEXT_SCORE
        if "$sort" in value and len(value) == 1:
            return {"$sort": {(TEXT_SCORE if v == {"$meta": "textScore"} else k): (
                -1 if v == {"$meta": "textScore"} else v) for k, v in value["$sort"].items()}}
        return {k: _with_text_score(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_text_score(v) for v in value]
    return value


def _text_stage(collection: mongomock.Collection, match: dict, stages: list,
                kwargs: dict) -> list[dict]:
    match = dict(match)
    text = match.pop("$text")
    if not isinstance(text, dict) or not isinstance(text.get("$search"), str):
        raise OperationFailure("$search required and must be a string", BAD_VALUE)
    if text.get("$caseSensitive") or text.get("$diacriticSensitive") \
            or set(text) - {"$search", "$language", "$caseSensitive", "$diacriticSensitive"}:
        raise NotImplementedError("the stand-in's $text is case- and diacritics-insensitive")
    spec = _text_index(collection)
    if spec is None:
        raise OperationFailure("text index required for $text query", INDEX_NOT_FOUND,
                               {"ok": 0.0, "code": INDEX_NOT_FOUND,
                                "codeName": CODE_NAMES[INDEX_NOT_FOUND]})
    for field in spec["prefix"]:
        value = match.get(field, {"$exists": True})
        if isinstance(value, dict) and set(value) != {"$eq"}:
            raise OperationFailure(
                "error processing query: planner returned error :: caused by :: failed to use "
                "text index to satisfy $text query (if text index is compound, are equality "
                "predicates given for all prefix fields?)", BAD_VALUE)
    query = _parse_text_search(text["$search"])
    found = [(doc, _text_score(doc, spec, query[0]))
             for doc in collection.find(match) if _text_matches(doc, spec, query)]
    if not stages:
        return [doc for doc, _ in found]
    scratch = collection.database[f"__standin_text_{ObjectId()}"]
    try:
        if found:
            scratch.insert_many([{**doc, TEXT_SCORE: score} for doc, score in found])
        out = list(scratch.aggregate(_with_text_score(stages), **kwargs))
    finally:
        scratch.drop()
    for doc in out:
        doc.pop(TEXT_SCORE, None)
    return out


def _merge(collection: mongomock.Collection, docs: list[dict], spec: Any) -> None:
    """The ``$merge`` stage (target in the same database; no pipeline for whenMatched)."""
    if isinstance(spec, str):
        spec = {"into": spec}
    into = spec["into"]
    if isinstance(into, dict):
        if into.get("db", collection.database.name) != collection.database.name:
            raise NotImplementedError("the stand-in merges within one database")
        into = into["coll"]
    on = spec.get("on", "_id")
    fields = [on] if isinstance(on, str) else list(on)
    matched, not_matched = spec.get("whenMatched", "merge"), spec.get("whenNotMatched",
                                                                      "insert")
    if not isinstance(matched, str):
        raise NotImplementedError("the stand-in's $merge takes no whenMatched pipeline")
    target = collection.database[into]
    if fields != ["_id"] and not any(
            index.get("unique") and sorted(k for k, _ in index["key"]) == sorted(fields)
            for index in target._store.indexes.values()):
        raise OperationFailure("Cannot find index to verify that join fields will be unique",
                               51183)
    for doc in docs:
        key = {}
        for field in fields:
            value = doc.get(field)
            if value is None or isinstance(value, list):
                raise OperationFailure("$merge write error: 'on' field cannot be missing, null, "
                                       "undefined or an array", 51132)
            key[field] = value
        existing = target.find_one(key)
        if existing is None:
            if not_matched == "insert":
                target.insert_one(dict(doc))
            elif not_matched == "fail":
                raise OperationFailure("$merge could not find a matching document in the target "
                                       "collection for at least one document in the source "
                                       "collection", 13113)
        elif matched == "merge":
            target.update_one({"_id": existing["_id"]},
                              {"$set": {k: v for k, v in doc.items() if k != "_id"}})
        elif matched == "replace":
            target.replace_one({"_id": existing["_id"]},
                               {k: v for k, v in doc.items() if k != "_id"})
        elif matched == "fail":
            raise _duplicate(target, "_id_", {"_id": 1}, {"_id": existing["_id"]})


def _aggregate(collection: mongomock.Collection, stages: list[dict], kwargs: dict) -> list:
    stages = list(stages)
    merge = None
    if stages and "$merge" in stages[-1]:
        merge = stages.pop()["$merge"]
    for i, stage in enumerate(stages):
        if "$merge" in stage:
            raise OperationFailure("$merge can only be the final stage in the pipeline", 40601)
        if i and "$match" in stage and _has_text(stage["$match"]):
            raise OperationFailure("$match with $text is only allowed as the first pipeline "
                                   "stage", 17313)
    if stages and "$match" in stages[0] and "$text" in stages[0]["$match"]:
        docs = _text_stage(collection, stages[0]["$match"], stages[1:], kwargs)
    else:
        if _uses_text_score(stages):
            raise OperationFailure("query requires text score metadata, but it is not "
                                   "available", NO_TEXT_SCORE)
        docs = list(collection.aggregate(stages, **kwargs))
    if merge is not None:
        _merge(collection, docs, merge)
        return []
    return docs


def _has_text(flt: Any) -> bool:
    if isinstance(flt, dict):
        return "$text" in flt or any(_has_text(v) for v in flt.values())
    if isinstance(flt, list):
        return any(_has_text(v) for v in flt)
    return False


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
