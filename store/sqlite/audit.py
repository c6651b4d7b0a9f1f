"""The audit log on SQLite."""
from __future__ import annotations

import json
import sqlite3

from store.base import AuditEntry, AuditRepo, Page
from store.ids import iso, new_id, parse_iso, utcnow
from store.query import encode_cursor, last_seen
from store.sqlite.db import Database


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(id=row["id"], kind=row["kind"], actor_id=row["actor_id"],
                      target_id=row["target_id"], ip=row["ip"], details=json.loads(row["details"]),
                      at=parse_iso(row["at"]))


class SqliteAudit(AuditRepo):
    def __init__(self, db: Database):
        self.db = db

    async def append(self, kind, *, actor_id=None, target_id=None, ip=None, details=None):
        entry = AuditEntry(id=new_id(), kind=kind, actor_id=actor_id, target_id=target_id,
                           ip=ip, details=dict(details or {}),
                           at=parse_iso(iso(utcnow())))  # as stored: milliseconds
        await self.db.write(lambda c: c.execute(
            "INSERT INTO audit_log (id, kind, actor_id, target_id, ip, details, at)"
            " VALUES (?,?,?,?,?,?,?)", (entry.id, kind, actor_id, target_id, ip,
                                        json.dumps(entry.details), iso(entry.at))))
        return entry

    async def list_entries(self, *, cursor=None, limit=50, user_id=None, kind=None):
        where, args = [], []
        if cursor:
            where.append("id < ?")
            args.append(last_seen(cursor, "a"))
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if user_id:
            # Two index range scans (actor, target) merged, rather than an OR over one scan.
            base = " AND ".join(where) or "1=1"
            sql = (f"SELECT * FROM (SELECT * FROM audit_log WHERE actor_id=? AND {base}"
                   f" UNION SELECT * FROM audit_log WHERE target_id=? AND {base})"
                   " ORDER BY id DESC LIMIT ?")
            params = (user_id, *args, user_id, *args, limit + 1)
        else:
            sql = (f"SELECT * FROM audit_log WHERE {' AND '.join(where) or '1=1'}"
                   " ORDER BY id DESC LIMIT ?")
            params = (*args, limit + 1)

        def read(conn):
            rows = [_entry(r) for r in conn.execute(sql, params)]
            return Page(rows[:limit], encode_cursor(["a", rows[limit - 1].id])
                        if len(rows) > limit else None)

        return await self.db.read(read)

    async def purge(self, before):
        return await self.db.write(lambda c: c.execute(
            "DELETE FROM audit_log WHERE at < ?", (iso(before),)).rowcount)
