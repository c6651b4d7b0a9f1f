"""Tables, rows, their history, and ticker values on SQLite.

Row values are one JSON object per row; sorting and filtering use ``json_extract`` with
keyset paging on (value, id).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from store.base import Column, Page, Row, RowChange, RowFilter, Table, TableRepo, TickRepo
from store.errors import BadRequest, Conflict, NotFound
from store.ids import iso, new_id, parse_iso, utcnow
from store.query import ROW_CURSOR, ROW_CURSOR_TEXT, decode_cursor, encode_cursor, last_seen
from store.sqlite.db import Database

OPS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _table(row: sqlite3.Row | None) -> Table | None:
    if row is None:
        return None
    columns = tuple(Column(**c) for c in json.loads(row["columns"]))
    return Table(id=row["id"], project_id=row["project_id"], name=row["name"], columns=columns,
                 created_by=row["created_by"], created_at=parse_iso(row["created_at"]),
                 updated_at=parse_iso(row["updated_at"]))


def _row(r: sqlite3.Row | None) -> Row | None:
    if r is None:
        return None
    return Row(id=r["id"], table_id=r["table_id"], values=json.loads(r["vals"]),
               version=r["version"], author_id=r["author_id"],
               created_at=parse_iso(r["created_at"]), updated_at=parse_iso(r["updated_at"]),
               updated_by=r["updated_by"])


def _change(r: sqlite3.Row) -> RowChange:
    return RowChange(seq=r["seq"], table_id=r["table_id"], row_id=r["row_id"],
                     version=r["version"], op=r["op"], user_id=r["user_id"],
                     at=parse_iso(r["at"]), before=_maybe_json(r["before"]),
                     after=_maybe_json(r["after"]), author_id=r["author_id"])


def _maybe_json(text: str | None):
    return None if text is None else json.loads(text)


def _dumps(values) -> str | None:
    return None if values is None else json.dumps(values, ensure_ascii=False,
                                                  separators=(",", ":"))


def _path(column: str) -> str:
    return '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(value) -> bool:
    return value is None or (isinstance(value, (str, float)) or
                             (isinstance(value, int) and -2 ** 63 <= value < 2 ** 63))


def _after(value, descending: bool) -> str:
    """Keyset condition for "after (value, id)" in SQLite's order, where NULL sorts lowest."""
    k = "json_extract(vals, ?)"
    if value is None:
        return f"({k} IS NULL AND id < ?)" if descending else \
            f"(({k} IS NULL AND id > ?) OR sort_key IS NOT NULL)"
    if descending:
        return f"(({k} = ? AND id < ?) OR {k} < ? OR {k} IS NULL)"
    return f"(({k} = ? AND id > ?) OR {k} > ?)"


def _expect(conn, table_id: str, row_id: str, version: int | None) -> Row:
    """The row as it is now, if it is still at ``version`` (the fence against stale writers)."""
    current = _row(conn.execute("SELECT * FROM data_rows WHERE id=? AND table_id=?",
                                (row_id, table_id)).fetchone())
    if current is None:
        raise NotFound("row not found")
    if version is not None and current.version != version:
        raise Conflict(f"the row changed (version {current.version}, you had {version}): "
                       f"reload it", {"version": current.version})
    return current


def _record(conn, table_id, row_id, version, op, user_id, now, before, after, author_id):
    conn.execute("INSERT INTO row_changes (table_id, row_id, version, op, user_id, at, before,"
                 " after, author_id) VALUES (?,?,?,?,?,?,?,?,?)",
                 (table_id, row_id, version, op, user_id, now, _dumps(before), _dumps(after),
                  author_id))


class SqliteTables(TableRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_table(self, *, project_id, name, columns: Sequence[Column], created_by):
        now = iso(utcnow())
        tid = new_id()
        cols = json.dumps([{"name": c.name, "type": c.type, "secret": c.secret} for c in columns])

        def tx(conn):
            try:
                conn.execute("INSERT INTO data_tables (id, project_id, name, columns, created_by,"
                             " created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
                             (tid, project_id, name, cols, created_by, now, now))
            except sqlite3.IntegrityError:
                raise Conflict(f"this project already has a table named {name!r}") from None
            return _table(conn.execute("SELECT * FROM data_tables WHERE id=?", (tid,)).fetchone())

        return await self.db.write(tx)

    async def get_table(self, table_id):
        return await self.db.read(lambda c: _table(
            c.execute("SELECT * FROM data_tables WHERE id=?", (table_id,)).fetchone()))

    async def list_tables(self, project_id):
        return await self.db.read(lambda c: [_table(r) for r in c.execute(
            "SELECT * FROM data_tables WHERE project_id=? ORDER BY id", (project_id,))])

    async def rename_table(self, table_id, name):
        def tx(conn):
            try:
                cur = conn.execute("UPDATE data_tables SET name=?, updated_at=? WHERE id=?",
                                   (name, iso(utcnow()), table_id))
            except sqlite3.IntegrityError:
                raise Conflict(f"this project already has a table named {name!r}") from None
            if cur.rowcount == 0:
                raise NotFound("table not found")
            return _table(conn.execute("SELECT * FROM data_tables WHERE id=?",
                                       (table_id,)).fetchone())

        return await self.db.write(tx)

    async def delete_table(self, table_id):
        return await self.db.write(lambda c: c.execute(
            "DELETE FROM data_tables WHERE id=?", (table_id,)).rowcount > 0)

    async def delete_project_tables(self, project_id):
        return await self.db.write(lambda c: c.execute(
            "DELETE FROM data_tables WHERE project_id=?", (project_id,)).rowcount)

    async def add_rows(self, table_id, rows, user_id, op="add"):
        now = iso(utcnow())

        def tx(conn):
            if conn.execute("SELECT 1 FROM data_tables WHERE id=?", (table_id,)).fetchone() is None:
                raise NotFound("table not found")
            out = []
            for values in rows:
                rid = new_id()
                conn.execute("INSERT INTO data_rows (id, table_id, vals, version, author_id,"
                             " created_at, updated_at, updated_by) VALUES (?,?,?,1,?,?,?,?)",
                             (rid, table_id, _dumps(values), user_id, now, now, user_id))
                _record(conn, table_id, rid, 1, op, user_id, now, None, values, user_id)
                out.append(Row(rid, table_id, dict(values), 1, user_id, parse_iso(now),
                               parse_iso(now), user_id))
            return out

        return await self.db.write(tx)

    async def get_row(self, table_id, row_id):
        return await self.db.read(lambda c: _row(c.execute(
            "SELECT * FROM data_rows WHERE id=? AND table_id=?", (row_id, table_id)).fetchone()))

    async def update_row(self, table_id, row_id, *, expected_version, values, user_id,
                         op="update"):
        now = iso(utcnow())

        def tx(conn):
            current = _expect(conn, table_id, row_id, expected_version)
            merged = {**current.values, **values}
            version = current.version + 1
            conn.execute("UPDATE data_rows SET vals=?, version=?, updated_at=?, updated_by=?"
                         " WHERE id=? AND version=?",
                         (_dumps(merged), version, now, user_id, row_id, expected_version))
            _record(conn, table_id, row_id, version, op, user_id, now, current.values, merged,
                    current.author_id)
            return Row(row_id, table_id, merged, version, current.author_id, current.created_at,
                       parse_iso(now), user_id)

        return await self.db.write(tx)

    async def delete_row(self, table_id, row_id, *, expected_version, user_id):
        now = iso(utcnow())

        def tx(conn):
            current = _expect(conn, table_id, row_id, expected_version)
            conn.execute("DELETE FROM data_rows WHERE id=?", (row_id,))
            _record(conn, table_id, row_id, current.version + 1, "delete", user_id, now,
                    current.values, None, current.author_id)
            return current

        return await self.db.write(tx)

    async def list_rows(self, table_id, *, cursor=None, limit=100, sort=None, descending=False,
                        filters: Sequence[RowFilter] = ()):
        where, args = ["table_id=?"], [table_id]
        for f in filters:
            if f.op != "contains" and not _scalar(f.value):
                raise BadRequest(f"filter on {f.column!r}: the value is text, a number, "
                                 "a boolean or null")
            if f.op == "contains":
                where.append("instr(lower(CAST(json_extract(vals, ?) AS TEXT)), lower(?)) > 0")
                args += [_path(f.column), str(f.value)]
            else:
                where.append(f"json_extract(vals, ?) {OPS[f.op]} ?")
                args += [_path(f.column), f.value]
        key = "json_extract(vals, ?)" if sort else "NULL"
        key_args = [_path(sort)] if sort else []
        cmp = "<" if descending else ">"
        if cursor:
            value, last_id = decode_cursor(cursor, "r", ROW_CURSOR, longest=ROW_CURSOR_TEXT)
            if not sort:
                where.append(f"id {cmp} ?")
                args.append(last_id)
            else:
                where.append(_after(value, descending))
                args += [*key_args, last_id] if value is None else \
                    [*key_args, value, last_id, *key_args, value] + (key_args if descending else [])
        direction = "DESC" if descending else "ASC"
        order = f"sort_key {direction}, id {direction}" if sort else f"id {direction}"
        sql = (f"SELECT *, {key} AS sort_key FROM data_rows WHERE {' AND '.join(where)}"
               f" ORDER BY {order} LIMIT ?")

        def read(conn):
            rows = conn.execute(sql, (*key_args, *args, limit + 1)).fetchall()
            items = [_row(r) for r in rows[:limit]]
            nxt = None
            if len(rows) > limit:
                last = rows[limit - 1]
                nxt = encode_cursor(["r", last["sort_key"], last["id"]])
            return Page(items, nxt)

        return await self.db.read(read)

    async def count_rows(self, table_id):
        return await self.db.read(lambda c: c.execute(
            "SELECT count(*) FROM data_rows WHERE table_id=?", (table_id,)).fetchone()[0])

    async def row_history(self, table_id, row_id):
        return await self.db.read(lambda c: [_change(r) for r in c.execute(
            "SELECT * FROM row_changes WHERE table_id=? AND row_id=? ORDER BY seq",
            (table_id, row_id))])

    async def table_history(self, table_id, *, cursor=None, limit=100):
        last = last_seen(cursor, "h", int)
        before = 2 ** 62 if last is None else last

        def read(conn):
            rows = conn.execute(
                "SELECT * FROM row_changes WHERE table_id=? AND seq<? ORDER BY seq DESC LIMIT ?",
                (table_id, before, limit + 1)).fetchall()
            items = [_change(r) for r in rows[:limit]]
            return Page(items, encode_cursor(["h", items[-1].seq]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def rows_at(self, table_id, at: datetime):
        def read(conn):
            rows = conn.execute(
                "SELECT c.* FROM row_changes c JOIN (SELECT row_id, max(seq) AS seq FROM"
                " row_changes WHERE table_id=? AND at<=? GROUP BY row_id) last"
                " ON c.seq=last.seq", (table_id, iso(at))).fetchall()
            return {r["row_id"]: _change(r) for r in rows if r["after"] is not None}

        return await self.db.read(read)

    async def restore_rows(self, table_id, target, user_id):
        now = iso(utcnow())

        def tx(conn):
            written, deleted = [], []
            for row_id, values in target.items():
                current = _row(conn.execute("SELECT * FROM data_rows WHERE id=? AND table_id=?",
                                            (row_id, table_id)).fetchone())
                last = conn.execute("SELECT version, author_id FROM row_changes WHERE table_id=?"
                                    " AND row_id=? ORDER BY seq DESC LIMIT 1",
                                    (table_id, row_id)).fetchone()
                if last is None:
                    continue  # not a row of this table
                version = last["version"] + 1
                author = last["author_id"]
                if values is None:
                    if current is None:
                        continue
                    conn.execute("DELETE FROM data_rows WHERE id=?", (row_id,))
                    _record(conn, table_id, row_id, version, "restore", user_id, now,
                            current.values, None, author)
                    deleted.append(current)
                    continue
                if current is not None and current.values == values:
                    continue
                if current is None:
                    conn.execute("INSERT INTO data_rows (id, table_id, vals, version, author_id,"
                                 " created_at, updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?)",
                                 (row_id, table_id, _dumps(values), version, author, now, now,
                                  user_id))
                    created = parse_iso(now)
                else:
                    conn.execute("UPDATE data_rows SET vals=?, version=?, updated_at=?,"
                                 " updated_by=? WHERE id=?",
                                 (_dumps(values), version, now, user_id, row_id))
                    created = current.created_at
                _record(conn, table_id, row_id, version, "restore", user_id, now,
                        current.values if current else None, values, author)
                written.append(Row(row_id, table_id, dict(values), version, author, created,
                                   parse_iso(now), user_id))
            return written, deleted

        return await self.db.write(tx)


class SqliteTicks(TickRepo):
    def __init__(self, db: Database):
        self.db = db

    async def add_tick(self, value, at, producer):
        await self.db.write(lambda c: c.execute(
            "INSERT INTO ticks (at, value, producer) VALUES (?,?,?)", (iso(at), value, producer)))

    async def recent_ticks(self, limit=20):
        return await self.db.read(lambda c: [
            (parse_iso(r["at"]), r["value"], r["producer"]) for r in c.execute(
                "SELECT * FROM ticks ORDER BY id DESC LIMIT ?", (limit,))])
