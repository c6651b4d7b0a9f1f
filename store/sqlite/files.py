"""File records on SQLite (the bytes live in the blob store)."""
from __future__ import annotations

import sqlite3

from store.base import FileRecord, FileRepo, Page
from store.ids import iso, parse_iso, utcnow
from store.query import encode_cursor, last_seen
from store.sqlite.db import Database


def _file(row: sqlite3.Row | None) -> FileRecord | None:
    if row is None:
        return None
    return FileRecord(id=row["id"], project_id=row["project_id"], name=row["name"],
                      size=row["size"], mime=row["mime"], sha256=row["sha256"],
                      uploader_id=row["uploader_id"], storage_key=row["storage_key"],
                      created_at=parse_iso(row["created_at"]))


class SqliteFiles(FileRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_file(self, *, file_id, project_id, name, size, mime, sha256, uploader_id,
                          storage_key) -> FileRecord:
        def tx(conn):
            conn.execute(
                "INSERT INTO files (id, project_id, name, size, mime, sha256, uploader_id,"
                " storage_key, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (file_id, project_id, name, size, mime, sha256, uploader_id, storage_key,
                 iso(utcnow())))
            return _file(conn.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone())

        return await self.db.write(tx)

    async def get_file(self, file_id) -> FileRecord | None:
        return await self.db.read(
            lambda c: _file(c.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()))

    async def list_files_in(self, project_ids, *, cursor=None, limit=50) -> Page[FileRecord]:
        ids = list(dict.fromkeys(project_ids))
        marks = ",".join("?" * len(ids))

        def read(conn):
            rows = conn.execute(
                f"SELECT * FROM files WHERE project_id IN ({marks}) AND id>? ORDER BY id"
                " LIMIT ?", (*ids, last_seen(cursor, "f") or "", limit + 1)).fetchall()
            items = [_file(r) for r in rows[:limit]]
            return Page(items, encode_cursor(["f", items[-1].id]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def delete_file(self, file_id) -> FileRecord | None:
        def tx(conn):
            row = conn.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM files WHERE id=?", (file_id,))
            return _file(row)

        return await self.db.write(tx)

    async def delete_project_files(self, project_id) -> list[FileRecord]:
        def tx(conn):
            rows = conn.execute("SELECT * FROM files WHERE project_id=?", (project_id,)).fetchall()
            conn.execute("DELETE FROM files WHERE project_id=?", (project_id,))
            return [_file(r) for r in rows]

        return await self.db.write(tx)
