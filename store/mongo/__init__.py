"""The MongoDB backend (PyMongo's async API).

``MongoStore(client, db_name)`` takes any client offering the AsyncMongoClient subset used
here (tests inject a stand-in that encodes with the same codec options); ``open`` builds the
real client, configured by ``CLIENT_OPTIONS``.
"""
from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from store.base import Store
from store.mongo.audit import MongoAudit, create_audit_indexes
from store.mongo.chat import MongoChat, create_chat_indexes
from store.mongo.files import MongoFiles, create_file_indexes
from store.mongo.imported_chats import MongoImportedChats, create_imported_chat_indexes
from store.mongo.jobs import MongoJobs, create_job_indexes
from store.mongo.pcap import MongoPcap, create_pcap_indexes
from store.mongo.projects import MongoProjects, create_project_indexes
from store.mongo.stats import MongoStats
from store.mongo.tables import MongoTables, MongoTicks, create_table_indexes
from store.mongo.users import MongoTokens, MongoUsers, create_user_indexes

#: Keyword arguments of the real client. tz_aware: BSON datetimes come back as aware UTC,
#: like the SQLite backend's; the other codec options keep PyMongo's defaults (a native
#: ``uuid.UUID`` is refused: uuidRepresentation is unspecified).
CLIENT_OPTIONS: dict[str, Any] = {"tz_aware": True}


class MongoStore(Store):
    backend = "mongo"

    def __init__(self, client: Any, db_name: str):
        self.client = client
        self.db_name = db_name
        self.db = client[db_name]
        self.users = MongoUsers(self.db)
        self.projects = MongoProjects(self.db)
        self.tokens = MongoTokens(self.db)
        self.files = MongoFiles(self.db)
        self.tables = MongoTables(self.db)
        self.ticks = MongoTicks(self.db)
        self.pcap = MongoPcap(self.db)
        self.chat_imports = MongoJobs(self.db["chat_import_jobs"])
        self.chat = MongoChat(self.db)
        self.chats = MongoImportedChats(self.db)
        self.audit = MongoAudit(self.db)
        self.stats = MongoStats(self.db)

    @classmethod
    async def open(cls, url: str, db_name: str) -> MongoStore:
        store = cls(AsyncMongoClient(url, **CLIENT_OPTIONS), db_name)
        try:
            await store.create_indexes()
        except BaseException:
            await store.close()
            raise
        return store

    async def create_indexes(self) -> None:
        """Idempotent: every instance runs it at start."""
        await create_user_indexes(self.db)
        await create_project_indexes(self.db)
        await create_file_indexes(self.db)
        await create_table_indexes(self.db)
        await create_pcap_indexes(self.db)
        await create_job_indexes(self.db["chat_import_jobs"])
        await create_chat_indexes(self.db)
        await create_imported_chat_indexes(self.db)
        await create_audit_indexes(self.db)

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()
