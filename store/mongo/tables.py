"""Tables, rows, their history, and ticker values on MongoDB.

Layout (collections named after the SQLite tables):

* ``data_tables``: one document per table; ``seq`` is the table's history counter.
* ``data_rows``: ``vals`` holds the row's values under *escaped* column names (``%``,
  ``.``, ``$`` and NUL percent-encoded, the empty name as a lone ``%``), so any column
  name is a plain field and ``vals.<name>`` sorts and filters in the database. ``txt``
  holds, for number values only, the text SQLite's ``CAST(... AS TEXT)`` gives, which is
  what ``contains`` searches in a number.
* ``row_changes``: the history, values escaped the same way.

Comparisons follow SQLite's rules for ``json_extract`` values: null never matches, booleans
compare as 0 and 1, any number is below any text. Sorting is MongoDB's (null lowest, as in
SQLite); it differs from SQLite's only where one column mixes booleans with other types,
which the handlers' per-column type check never writes.

No transactions (a standalone mongod has none): every row write is one atomic
single-document operation carrying the version check, and its history entry is written
right after. A crash between the two can lose the entry of the one change in flight, but
history never records a change that did not happen. ``seq`` comes from ``$inc`` on the
table document, taken after reading the row and before writing it, so within a row it
grows with the version even under concurrent writers.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload
from urllib.parse import unquote

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from store.base import Column, Page, Row, RowChange, RowFilter, Table, TableRepo, TickRepo
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id
from store.mongo.common import ms, now, plain
from store.query import ROW_CURSOR, ROW_CURSOR_TEXT, decode_cursor, encode_cursor, last_seen

AFTER = ReturnDocument.AFTER
#: Tries of a read-then-conditional-write that found the row changed in between.
WRITE_TRIES = 5
OPS = {"eq": "$eq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
PY_OPS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lte": operator.le,
          "gt": operator.gt, "gte": operator.ge}
NOTHING: dict[str, Any] = {"_id": {"$in": []}}
INT64 = 2 ** 63


async def create_table_indexes(db: Any) -> None:
    await db["data_tables"].create_index([("projectId", 1), ("name", 1)],
                                         name="projectId_name_unique", unique=True)
    await db["data_rows"].create_index([("tableId", 1), ("_id", 1)], name="tableId_id")
    changes = db["row_changes"]
    await changes.create_index([("tableId", 1), ("rowId", 1), ("seq", 1)],
                               name="tableId_rowId_seq")
    await changes.create_index([("tableId", 1), ("seq", 1)], name="tableId_seq_unique",
                               unique=True)
    # ticks: ordered by their time-ordered _id, which has its index already.


# -- values ---------------------------------------------------------------------------

def field_key(column: str) -> str:
    """A column name as a field name MongoDB takes in any document and any query path."""
    if column == "":
        return "%"  # no escaped name is a lone "%": every "%" starts an escape
    return (column.replace("%", "%25").replace(".", "%2E").replace("$", "%24")
            .replace("\0", "%00"))


def column_name(key: str) -> str:
    return "" if key == "%" else unquote(key)


def _bson(value):
    # Integers past 64 bits do not fit BSON; SQLite's json_extract reads them as REAL too.
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return float(value)
    return value


def _number_text(value) -> str:
    """SQLite's text for a number (``%!.15g``: 3.0 -> "3.0", 1e20 -> "1.0e+20")."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0.0"
    mantissa, e, exponent = format(value, ".15g").partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


@overload
def _encode(values: dict) -> dict: ...
@overload
def _encode(values: None) -> None: ...
def _encode(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {field_key(k): _bson(v) for k, v in values.items()}


def _texts(vals: dict) -> dict:
    return {k: _number_text(v) for k, v in vals.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


@overload
def _decode(vals: dict) -> dict: ...
@overload
def _decode(vals: None) -> None: ...
def _decode(vals: dict | None) -> dict | None:
    if vals is None:
        return None
    return {column_name(k): plain(v) for k, v in vals.items()}


def _row_fields(values: dict) -> dict:
    vals = _encode(values)
    return {"vals": vals, "txt": _texts(vals)}


# -- documents ------------------------------------------------------------------------

def _table(doc: dict | None) -> Table | None:
    if doc is None:
        return None
    return Table(id=doc["_id"], project_id=doc["projectId"], name=doc["name"],
                 columns=tuple(Column(**c) for c in doc["columns"]),
                 created_by=doc["createdBy"], created_at=doc["createdAt"],
                 updated_at=doc["updatedAt"])


def _row(doc: dict | None) -> Row | None:
    if doc is None:
        return None
    return Row(id=doc["_id"], table_id=doc["tableId"], values=_decode(doc["vals"]),
               version=doc["version"], author_id=doc["authorId"],
               created_at=doc["createdAt"], updated_at=doc["updatedAt"],
               updated_by=doc["updatedBy"])


def _change(doc: dict) -> RowChange:
    return RowChange(seq=doc["seq"], table_id=doc["tableId"], row_id=doc["rowId"],
                     version=doc["version"], op=doc["op"], user_id=doc["userId"], at=doc["at"],
                     before=_decode(doc["before"]), after=_decode(doc["after"]),
                     author_id=doc["authorId"])


def _change_doc(table_id, row_id, seq, version, op, user_id, at, before, after, author_id):
    return {"tableId": table_id, "rowId": row_id, "seq": seq, "version": version, "op": op,
            "userId": user_id, "at": at, "before": _encode(before), "after": _encode(after),
            "authorId": author_id}


# -- queries --------------------------------------------------------------------------

def _compare(field: str, op: str, value) -> dict:
    """``field <op> value`` as SQLite compares a json_extract result with a parameter."""
    if value is None:
        return NOTHING  # NULL = anything is NULL, never true
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float, str)):
        raise BadRequest("a filter or cursor value is text, a number, a boolean or null")
    value = _bson(value)
    if op == "ne":
        same = [{field: {"$lt": value}}, {field: {"$gt": value}}]
    else:
        same = [{field: {OPS[op]: value}}]
    if isinstance(value, str):
        # Numbers (booleans included) are below any text.
        if op in ("lt", "lte", "ne"):
            same += [{field: {"$type": "number"}}, {field: {"$type": "bool"}}]
    else:
        bools = [b for b in (False, True) if PY_OPS[op](int(b), value)]
        if bools:
            same.append({field: {"$in": bools}})
        if op in ("gt", "gte", "ne"):
            same.append({field: {"$type": "string"}})
    return same[0] if len(same) == 1 else {"$or": same}


def _contains(key: str, value) -> dict:
    """SQLite's ``instr(lower(CAST(v AS TEXT)), lower(?))``: its lower() folds ASCII only."""
    needle = str(value)
    pattern = "".join(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha()
                      else re.escape(c) for c in needle)
    either: list[dict[str, Any]] = [{f"vals.{key}": {"$regex": pattern}},
                                    {f"txt.{key}": {"$regex": pattern}}]
    bools = [b for b in (False, True) if needle.lower() in str(int(b))]
    if bools:
        either.append({f"vals.{key}": {"$in": bools}})
    return {"$or": either}


def _after(field: str, value, last_id: str, descending: bool) -> dict:
    """Keyset condition for "after (value, id)" in sort order, NULL lowest."""
    if value is None:
        if descending:
            return {field: None, "_id": {"$lt": last_id}}
        return {"$or": [{field: None, "_id": {"$gt": last_id}}, {field: {"$ne": None}}]}
    past = "$lt" if descending else "$gt"
    either = [{"$and": [_compare(field, "eq", value), {"_id": {past: last_id}}]},
              _compare(field, "lt" if descending else "gt", value)]
    if descending:
        either.append({field: None})
    return {"$or": either}


def _conflict(current: Row, version: int) -> Conflict:
    return Conflict(f"the row changed (version {current.version}, you had {version}): "
                    f"reload it", {"version": current.version})


class MongoTables(TableRepo):
    def __init__(self, db: Any):
        self.db = db
        self.tables = db["data_tables"]
        self.rows = db["data_rows"]
        self.changes = db["row_changes"]

    # -- tables -------------------------------------------------------------------------

    async def create_table(self, *, project_id, name, columns: Sequence[Column], created_by):
        at = now()
        doc = {"_id": new_id(), "projectId": project_id, "name": name,
               "columns": [{"name": c.name, "type": c.type, "secret": c.secret}
                           for c in columns],
               "createdBy": created_by, "createdAt": at, "updatedAt": at, "seq": 0}
        try:
            await self.tables.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"this project already has a table named {name!r}") from None
        return _table(doc)

    async def get_table(self, table_id):
        return _table(await self.tables.find_one({"_id": table_id}))

    async def list_tables(self, project_id):
        docs = await self.tables.find({"projectId": project_id}).sort("_id", 1).to_list(None)
        return [_table(d) for d in docs]

    async def rename_table(self, table_id, name):
        try:
            doc = await self.tables.find_one_and_update(
                {"_id": table_id}, {"$set": {"name": name, "updatedAt": now()}},
                return_document=AFTER)
        except DuplicateKeyError:
            raise Conflict(f"this project already has a table named {name!r}") from None
        if doc is None:
            raise NotFound("table not found")
        return _table(doc)

    async def delete_table(self, table_id):
        # The table goes first: add_rows re-checks it after inserting, so no row outlives
        # it; a crash half-way leaves only rows nothing can reach.
        if (await self.tables.delete_one({"_id": table_id})).deleted_count == 0:
            return False
        await self._drop_contents([table_id])
        return True

    async def delete_project_tables(self, project_id):
        docs = await self.tables.find({"projectId": project_id}, {"_id": 1}).to_list(None)
        ids = [d["_id"] for d in docs]
        if not ids:
            return 0
        deleted = (await self.tables.delete_many({"_id": {"$in": ids}})).deleted_count
        await self._drop_contents(ids)
        return deleted

    async def _drop_contents(self, table_ids: list[str]) -> None:
        await self.rows.delete_many({"tableId": {"$in": table_ids}})
        await self.changes.delete_many({"tableId": {"$in": table_ids}})

    async def _take_seqs(self, table_id: str, n: int) -> int | None:
        """Reserve ``n`` history numbers; the first, or None when the table is gone."""
        doc = await self.tables.find_one_and_update(
            {"_id": table_id}, {"$inc": {"seq": n}}, projection={"seq": 1},
            return_document=AFTER)
        return None if doc is None else doc["seq"] - n + 1

    # -- rows ---------------------------------------------------------------------------

    async def add_rows(self, table_id, rows, user_id, op="add"):
        rows = list(rows)
        first = await self._take_seqs(table_id, len(rows))
        if first is None:
            raise NotFound("table not found")
        at = now()
        out, docs, changes = [], [], []
        for i, values in enumerate(rows):
            rid = new_id()
            docs.append({"_id": rid, "tableId": table_id, **_row_fields(values), "version": 1,
                         "authorId": user_id, "createdAt": at, "updatedAt": at,
                         "updatedBy": user_id})
            changes.append(_change_doc(table_id, rid, first + i, 1, op, user_id, at, None,
                                       values, user_id))
            out.append(Row(rid, table_id, dict(values), 1, user_id, at, at, user_id))
        if not docs:
            return out
        await self.rows.insert_many(docs)
        await self.changes.insert_many(changes)
        if await self.tables.find_one({"_id": table_id}, {"_id": 1}) is None:
            # The table was deleted while we wrote: take back what its delete missed.
            await self.rows.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            await self.changes.delete_many({"tableId": table_id})
            raise NotFound("table not found")
        return out

    async def get_row(self, table_id, row_id):
        return _row(await self.rows.find_one({"_id": row_id, "tableId": table_id}))

    async def _expect(self, table_id: str, row_id: str, version: int | None) -> Row:
        """The row as it is now, if it is still at ``version`` (the fence against stale
        writers)."""
        current = await self.get_row(table_id, row_id)
        if current is None:
            raise NotFound("row not found")
        if version is not None and current.version != version:
            raise _conflict(current, version)
        return current

    async def update_row(self, table_id, row_id, *, expected_version, values, user_id,
                         op="update"):
        current = await self._expect(table_id, row_id, expected_version)
        seq = await self._take_seqs(table_id, 1)
        if seq is None:
            raise NotFound("row not found")
        merged = {**current.values, **values}
        version = current.version + 1
        at = now()
        done = await self.rows.update_one(
            {"_id": row_id, "tableId": table_id, "version": current.version},
            {"$set": {**_row_fields(merged), "version": version, "updatedAt": at,
                      "updatedBy": user_id}})
        if done.matched_count == 0:  # another writer got there between our read and write
            raise _conflict(await self._expect(table_id, row_id, None), expected_version)
        await self.changes.insert_one(_change_doc(table_id, row_id, seq, version, op, user_id,
                                                  at, current.values, merged,
                                                  current.author_id))
        return Row(row_id, table_id, merged, version, current.author_id, current.created_at,
                   at, user_id)

    async def delete_row(self, table_id, row_id, *, expected_version, user_id):
        for _ in range(WRITE_TRIES):
            current = await self._expect(table_id, row_id, expected_version)
            seq = await self._take_seqs(table_id, 1)
            if seq is None:
                raise NotFound("row not found")
            gone = await self.rows.delete_one(
                {"_id": row_id, "tableId": table_id, "version": current.version})
            if gone.deleted_count:
                await self.changes.insert_one(_change_doc(
                    table_id, row_id, seq, current.version + 1, "delete", user_id, now(),
                    current.values, None, current.author_id))
                return current
            # Changed since we read it: a stale version is refused by _expect; without an
            # expected version, delete what is there now.
        raise Conflict("the row keeps changing: try again")

    async def list_rows(self, table_id, *, cursor=None, limit=100, sort=None, descending=False,
                        filters: Sequence[RowFilter] = ()):
        where: list[dict] = []
        for f in filters:
            if f.op == "contains":
                where.append(_contains(field_key(f.column), f.value))
            elif f.op in PY_OPS:
                where.append(_compare(f"vals.{field_key(f.column)}", f.op, f.value))
            else:
                raise BadRequest(f"unknown filter op {f.op!r}")
        key = field_key(sort) if sort else None
        direction = -1 if descending else 1
        if cursor:
            value, last_id = decode_cursor(cursor, "r", ROW_CURSOR, longest=ROW_CURSOR_TEXT)
            if key is None:
                where.append({"_id": {"$lt" if descending else "$gt": last_id}})
            else:
                where.append(_after(f"vals.{key}", value, last_id, descending))
        query: dict = {"tableId": table_id}
        if where:
            query["$and"] = where
        order = ([(f"vals.{key}", direction)] if key else []) + [("_id", direction)]
        docs = await self.rows.find(query).sort(order).limit(limit + 1).to_list(None)
        items = [_row(d) for d in docs[:limit]]
        nxt = None
        if len(docs) > limit:
            last = docs[limit - 1]
            value = last["vals"].get(key) if key else None
            nxt = encode_cursor(["r", int(value) if isinstance(value, bool) else value,
                                 last["_id"]])
        return Page(items, nxt)

    async def count_rows(self, table_id):
        return await self.rows.count_documents({"tableId": table_id})

    # -- history ------------------------------------------------------------------------

    async def row_history(self, table_id, row_id):
        docs = await self.changes.find({"tableId": table_id, "rowId": row_id}) \
            .sort("seq", 1).to_list(None)
        return [_change(d) for d in docs]

    async def table_history(self, table_id, *, cursor=None, limit=100):
        query: dict = {"tableId": table_id}
        if cursor:
            query["seq"] = {"$lt": last_seen(cursor, "h", int)}
        docs = await self.changes.find(query).sort("seq", -1).limit(limit + 1).to_list(None)
        items = [_change(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["h", items[-1].seq]) if len(docs) > limit else None)

    async def rows_at(self, table_id, at: datetime):
        # Each row's last change up to ``at``, found by the server: the history newest first
        # (the tableId_seq index), the first change per row, rows deleted then left out.
        cursor = await self.changes.aggregate([
            {"$match": {"tableId": table_id, "at": {"$lte": ms(at)}}},
            {"$sort": {"seq": -1}},
            {"$group": {"_id": "$rowId", "last": {"$first": "$$ROOT"}}},
            {"$match": {"last.after": {"$ne": None}}},
            {"$replaceRoot": {"newRoot": "$last"}},
            {"$sort": {"seq": 1}},
        ])
        return {d["rowId"]: _change(d) for d in await cursor.to_list(None)}

    async def restore_rows(self, table_id, target, user_id):
        written, deleted = [], []
        for row_id, values in target.items():
            for _ in range(WRITE_TRIES):
                try:
                    outcome = await self._restore_one(table_id, row_id, values, user_id)
                    break
                except _Moved:
                    continue
            else:
                raise Conflict("a row kept changing during the restore: try again")
            if outcome is not None:
                (deleted if values is None else written).append(outcome)
        return written, deleted

    async def _restore_one(self, table_id, row_id, values, user_id) -> Row | None:
        """Write one row of a restore; the row written or deleted, None if nothing to do.
        Raises _Moved when another writer changed it between our read and our write."""
        current = await self.get_row(table_id, row_id)
        last = await self.changes.find({"tableId": table_id, "rowId": row_id}) \
            .sort("seq", -1).limit(1).to_list(None)
        if not last:
            return None  # not a row of this table
        if values is None and current is None:
            return None
        if values is not None and current is not None and current.values == values:
            return None
        # max(): a crash may have lost the history entry of the row's latest version.
        version = max(last[0]["version"], current.version if current else 0) + 1
        author = last[0]["authorId"]
        seq = await self._take_seqs(table_id, 1)
        if seq is None:
            raise NotFound("table not found")
        at = now()
        before = current.values if current else None
        if values is None:
            gone = await self.rows.delete_one({"_id": row_id, "tableId": table_id,
                                               "version": current.version})
            if not gone.deleted_count:
                raise _Moved
            result = current
        elif current is None:
            try:
                await self.rows.insert_one({
                    "_id": row_id, "tableId": table_id, **_row_fields(values),
                    "version": version, "authorId": author, "createdAt": at, "updatedAt": at,
                    "updatedBy": user_id})
            except DuplicateKeyError:
                raise _Moved from None
            result = Row(row_id, table_id, dict(values), version, author, at, at, user_id)
        else:
            done = await self.rows.update_one(
                {"_id": row_id, "tableId": table_id, "version": current.version},
                {"$set": {**_row_fields(values), "version": version, "updatedAt": at,
                          "updatedBy": user_id}})
            if not done.matched_count:
                raise _Moved
            result = Row(row_id, table_id, dict(values), version, author, current.created_at,
                         at, user_id)
        await self.changes.insert_one(_change_doc(table_id, row_id, seq, version, "restore",
                                                  user_id, at, before, values, author))
        return result


class _Moved(Exception):
    """The row changed between a restore's read and its conditional write."""


class MongoTicks(TickRepo):
    def __init__(self, db: Any):
        self.col = db["ticks"]

    async def add_tick(self, value, at, producer):
        await self.col.insert_one({"_id": new_id(), "at": ms(at), "value": float(value),
                                   "producer": producer})

    async def recent_ticks(self, limit=20):
        docs = await self.col.find({}).sort("_id", -1).limit(limit).to_list(None)
        return [(d["at"], d["value"], d["producer"]) for d in docs]
