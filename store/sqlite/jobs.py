"""Durable leased jobs on SQLite (``JobQueue``), one row per file in a table of the kind's
own (``pcap_jobs``, ``chat_import_jobs``). A claim or a renewal is one conditional UPDATE
inside the write transaction, fenced by ``attempt``. Kinds add what their jobs derive
through three hooks (a capture's packet table, its indexes when done, its deletion)."""
from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from store.base import Job, JobQueue
from store.ids import iso, new_id, parse_iso, utcnow

if TYPE_CHECKING:  # db.py imports the migrations, which use job_table_sql
    from store.sqlite.db import Database


def job_row(r: sqlite3.Row | None) -> Job | None:
    if r is None:
        return None
    return Job(file_id=r["file_id"], project_id=r["project_id"], state=r["state"],
               attempt=r["attempt"], owner=r["owner"], lease_until=r["lease_until"],
               progress=json.loads(r["progress"]),
               error=json.loads(r["error"]) if r["error"] else None,
               requested_by=r["requested_by"], queue_key=r["queue_key"],
               created_at=parse_iso(r["created_at"]), updated_at=parse_iso(r["updated_at"]),
               started_at=parse_iso(r["started_at"]), finished_at=parse_iso(r["finished_at"]),
               params=json.loads(r["params"]) if r["params"] else {})


def job_table_sql(table: str, extra: str = "") -> list[str]:
    """The schema of a kind's job table (``extra``: its own columns, SQL)."""
    return [f"""CREATE TABLE {table} (
            file_id TEXT PRIMARY KEY,{extra}
            project_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until REAL,
            progress TEXT NOT NULL DEFAULT '{{}}',
            error TEXT,
            requested_by TEXT NOT NULL,
            queue_key TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            params TEXT
        )""",
            f"CREATE INDEX {table}_state ON {table}(state, queue_key)",
            f"CREATE INDEX {table}_project ON {table}(project_id)"]


class SqliteJobs(JobQueue):
    def __init__(self, db: Database, table: str):
        self.db = db
        self.table = table

    # -- what a kind adds -------------------------------------------------------------------

    def _new_columns(self, conn: sqlite3.Connection) -> dict[str, object]:
        """Columns of the kind's own, for a job's first row."""
        return {}

    def _on_done(self, conn: sqlite3.Connection, file_id: str) -> None:
        """Inside the transaction that marks the running attempt done."""

    def _on_delete(self, conn: sqlite3.Connection, file_id: str) -> None:
        """Inside the transaction that deletes the job: drop what it derived."""

    def _owns(self, conn: sqlite3.Connection, file_id: str, attempt: int) -> bool:
        row = conn.execute(f"SELECT state, attempt FROM {self.table} WHERE file_id=?",
                           (file_id,)).fetchone()
        return row is not None and row["state"] == "running" and row["attempt"] == attempt

    def _get(self, conn: sqlite3.Connection, file_id: str) -> Job | None:
        return job_row(conn.execute(f"SELECT * FROM {self.table} WHERE file_id=?",
                                    (file_id,)).fetchone())

    # -- the queue ----------------------------------------------------------------------------

    async def queue_job(self, *, file_id, project_id, requested_by, params=None) -> Job:
        now = iso(utcnow())
        t = self.table
        encoded = json.dumps(params) if params else None

        def tx(conn):
            job = self._get(conn, file_id)
            if job is not None and job.state in ("queued", "running"):
                return job
            if job is None:
                extra = self._new_columns(conn)
                names = ", ".join(["file_id", *extra, "project_id", "state", "attempt",
                                   "progress", "requested_by", "queue_key", "created_at",
                                   "updated_at", "params"])
                values = [file_id, *extra.values(), project_id, "queued", 0, "{}",
                          requested_by, new_id(), now, now, encoded]
                conn.execute(f"INSERT INTO {t} ({names}) VALUES "
                             f"({', '.join('?' * len(values))})", values)
            else:
                conn.execute(
                    f"UPDATE {t} SET state='queued', owner=NULL, lease_until=NULL,"
                    " progress='{}', error=NULL, requested_by=?, queue_key=?, updated_at=?,"
                    " started_at=NULL, finished_at=NULL, params=? WHERE file_id=?",
                    (requested_by, new_id(), now, encoded, file_id))
            return self._get(conn, file_id)

        return await self.db.write(tx)

    async def get_job(self, file_id) -> Job | None:
        return await self.db.read(lambda c: self._get(c, file_id))

    async def claim_job(self, *, instance, now, lease_s) -> Job | None:
        stamp = iso(utcnow())
        t = self.table

        def tx(conn):
            row = conn.execute(
                f"SELECT file_id FROM {t} WHERE (state='running' AND lease_until<?)"
                " OR state='queued' ORDER BY state='queued', queue_key LIMIT 1",
                (now,)).fetchone()
            if row is None:
                return None
            conn.execute(
                f"UPDATE {t} SET state='running', owner=?, lease_until=?,"
                " attempt=attempt+1, updated_at=?, started_at=? WHERE file_id=?",
                (instance, now + lease_s, stamp, stamp, row["file_id"]))
            return self._get(conn, row["file_id"])

        return await self.db.write(tx)

    async def renew_job(self, file_id, *, attempt, lease_until, progress=None) -> bool:
        def tx(conn):
            sets, args = ["lease_until=?", "updated_at=?"], [lease_until, iso(utcnow())]
            if progress is not None:
                sets.append("progress=?")
                args.append(json.dumps(progress))
            return conn.execute(
                f"UPDATE {self.table} SET {', '.join(sets)} WHERE file_id=?"
                " AND state='running' AND attempt=?", (*args, file_id, attempt)).rowcount > 0

        return await self.db.write(tx)

    async def finish_job(self, file_id, *, attempt, state, error=None, progress=None) -> bool:
        now = iso(utcnow())

        def tx(conn):
            if state == "done" and self._owns(conn, file_id, attempt):
                self._on_done(conn, file_id)
            return conn.execute(
                f"UPDATE {self.table} SET state=?, error=?, progress=COALESCE(?, progress),"
                " owner=NULL, lease_until=NULL, updated_at=?, finished_at=?"
                " WHERE file_id=? AND state='running' AND attempt=?",
                (state, json.dumps(error) if error else None,
                 json.dumps(progress) if progress is not None else None, now, now, file_id,
                 attempt)).rowcount > 0

        return await self.db.write(tx)

    async def cancel_job(self, file_id) -> Job | None:
        now = iso(utcnow())

        def tx(conn):
            job = self._get(conn, file_id)
            if job is None or job.state not in ("queued", "running"):
                return None
            conn.execute(f"UPDATE {self.table} SET state='cancelled', owner=NULL,"
                         " lease_until=NULL, updated_at=?, finished_at=? WHERE file_id=?",
                         (now, now, file_id))
            return job

        return await self.db.write(tx)

    async def queue_position(self, file_id) -> int | None:
        t = self.table

        def read(conn):
            row = conn.execute(f"SELECT state, queue_key FROM {t} WHERE file_id=?",
                               (file_id,)).fetchone()
            if row is None or row["state"] != "queued":
                return None
            return conn.execute(f"SELECT COUNT(*) FROM {t} WHERE state='queued' AND"
                                " queue_key<=?", (row["queue_key"],)).fetchone()[0]

        return await self.db.read(read)

    async def count_jobs(self) -> dict[str, int]:
        def read(conn):
            counts = dict.fromkeys(("queued", "running"), 0)
            counts.update(conn.execute(f"SELECT state, count(*) FROM {self.table} WHERE state"
                                       " IN ('queued', 'running') GROUP BY state"))
            return counts

        return await self.db.read(read)

    async def delete_job(self, file_id) -> None:
        def tx(conn):
            self._on_delete(conn, file_id)
            conn.execute(f"DELETE FROM {self.table} WHERE file_id=?", (file_id,))

        await self.db.write(tx)

    async def delete_project_jobs(self, project_id) -> list[str]:
        ids = await self.db.read(lambda c: [r[0] for r in c.execute(
            f"SELECT file_id FROM {self.table} WHERE project_id=?", (project_id,))])
        for file_id in ids:
            await self.delete_job(file_id)
        return ids
