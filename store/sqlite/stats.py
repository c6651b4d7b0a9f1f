"""Site-wide counts on SQLite: kept by triggers in one small table, so ``admin:metrics``
reads a handful of rows instead of counting a million messages (count(*) walks a whole
index in SQLite). Counts that depend on time (active users) or on state (jobs) are
indexed range counts."""
from __future__ import annotations

from typing import TYPE_CHECKING

from store.base import SiteCounts, StatsRepo
from store.ids import iso

if TYPE_CHECKING:  # db.py imports the migrations, which use site_counter_sql
    from store.sqlite.db import Database

#: counter name -> (table, the counted rows' condition, the amount one row adds)
COUNTERS = {
    "users": ("users", "1", "1"),
    "guests": ("users", "{row}.is_guest = 1", "1"),
    "projects": ("projects", "1", "1"),
    "conversations": ("conversations", "1", "1"),
    "messages": ("chat_messages", "1", "1"),
    "files": ("files", "1", "1"),
    "storage_bytes": ("files", "1", "{row}.size"),
}


def site_counter_sql() -> list[str]:
    """The counters table, filled from what exists, and the triggers that keep it."""
    out = ["CREATE TABLE site_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"]
    for name, (table, where, amount) in COUNTERS.items():
        total = "count(*)" if amount == "1" else f"coalesce(sum({amount.format(row=table)}), 0)"
        out.append(f"INSERT INTO site_counters SELECT '{name}', {total} FROM {table}"
                   f" WHERE {where.format(row=table)}")
    tables = dict.fromkeys(table for table, _, _ in COUNTERS.values())
    for table in tables:
        for when, row, sign in (("INSERT", "NEW", "+"), ("DELETE", "OLD", "-")):
            updates = "".join(
                f" UPDATE site_counters SET value = value {sign} ({amount.format(row=row)})"
                f" WHERE name = '{name}' AND {where.format(row=row)};"
                for name, (t, where, amount) in COUNTERS.items() if t == table)
            out.append(f"CREATE TRIGGER count_{table}_{when.lower()} AFTER {when} ON {table}"
                       f" BEGIN{updates} END")
    # A guest who registers stops being a guest.
    out.append("CREATE TRIGGER count_guests_update AFTER UPDATE OF is_guest ON users"
               " WHEN OLD.is_guest != NEW.is_guest BEGIN UPDATE site_counters"
               " SET value = value + NEW.is_guest - OLD.is_guest WHERE name = 'guests'; END")
    out.append("CREATE INDEX users_last_seen ON users(last_seen_at)")
    return out


class SqliteStats(StatsRepo):
    def __init__(self, db: Database):
        self.db = db

    async def site_counts(self, active_since):
        def read(conn):
            counters = dict(conn.execute("SELECT name, value FROM site_counters"))
            active = conn.execute("SELECT count(*) FROM users WHERE last_seen_at >= ?",
                                  (iso(active_since),)).fetchone()[0]
            jobs = {"running": 0, "queued": 0}
            for table in ("pcap_jobs", "chat_import_jobs"):
                for state, n in conn.execute(
                        f"SELECT state, count(*) FROM {table} WHERE state IN"
                        " ('running', 'queued') GROUP BY state"):
                    jobs[state] += n
            return SiteCounts(users=counters["users"], guests=counters["guests"],
                              projects=counters["projects"],
                              conversations=counters["conversations"],
                              messages=counters["messages"], files=counters["files"],
                              storage_bytes=counters["storage_bytes"], active_users=active,
                              jobs_running=jobs["running"], jobs_queued=jobs["queued"])

        return await self.db.read(read)
