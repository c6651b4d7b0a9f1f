"""The audit log on MongoDB."""
from __future__ import annotations

from typing import Any

from store.base import AuditEntry, AuditRepo, Page
from store.ids import new_id
from store.mongo.common import ms, now
from store.query import encode_cursor, last_seen


async def create_audit_indexes(db: Any) -> None:
    col = db["audit_log"]
    await col.create_index([("actorId", 1), ("_id", -1)], name="actor")
    await col.create_index([("targetId", 1), ("_id", -1)], name="target")
    await col.create_index([("kind", 1), ("_id", -1)], name="kind")
    await col.create_index("at", name="at")


def _entry(doc: dict) -> AuditEntry:
    return AuditEntry(id=doc["_id"], kind=doc["kind"], actor_id=doc["actorId"],
                      target_id=doc["targetId"], ip=doc["ip"], details=doc["details"],
                      at=doc["at"])


class MongoAudit(AuditRepo):
    def __init__(self, db: Any):
        self.col = db["audit_log"]

    async def append(self, kind, *, actor_id=None, target_id=None, ip=None, details=None):
        doc = {"_id": new_id(), "kind": kind, "actorId": actor_id, "targetId": target_id,
               "ip": ip, "details": dict(details or {}), "at": now()}
        await self.col.insert_one(doc)
        return _entry(doc)

    async def list_entries(self, *, cursor=None, limit=50, user_id=None, kind=None):
        query: dict = {}
        if cursor:
            query["_id"] = {"$lt": last_seen(cursor, "a")}
        if kind:
            query["kind"] = kind
        if user_id:
            query["$or"] = [{"actorId": user_id}, {"targetId": user_id}]
        docs = await self.col.find(query).sort("_id", -1).limit(limit + 1).to_list(None)
        items = [_entry(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["a", items[-1].id]) if len(docs) > limit else None)

    async def purge(self, before):
        return (await self.col.delete_many({"at": {"$lt": ms(before)}})).deleted_count
