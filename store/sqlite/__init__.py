"""The embedded backend: one SQLite file under DATA_DIR."""
from __future__ import annotations

from pathlib import Path

from store.base import Store
from store.sqlite.audit import SqliteAudit
from store.sqlite.chat import SqliteChat
from store.sqlite.db import Database
from store.sqlite.files import SqliteFiles
from store.sqlite.imported_chats import SqliteImportedChats
from store.sqlite.jobs import SqliteJobs
from store.sqlite.pcap import SqlitePcap
from store.sqlite.projects import SqliteProjects
from store.sqlite.stats import SqliteStats
from store.sqlite.tables import SqliteTables, SqliteTicks
from store.sqlite.users import SqliteTokens, SqliteUsers


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, db: Database):
        self.db = db
        self.users = SqliteUsers(db)
        self.projects = SqliteProjects(db)
        self.tokens = SqliteTokens(db)
        self.files = SqliteFiles(db)
        self.tables = SqliteTables(db)
        self.ticks = SqliteTicks(db)
        self.pcap = SqlitePcap(db)
        self.chat_imports = SqliteJobs(db, "chat_import_jobs")
        self.chat = SqliteChat(db)
        self.chats = SqliteImportedChats(db)
        self.audit = SqliteAudit(db)
        self.stats = SqliteStats(db)

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = Database(path)
        await db.migrate()
        return cls(db)

    async def ping(self) -> None:
        await self.db.read(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self.db.close()
