"""Site-wide counts on MongoDB: totals from the collections' metadata
(``estimated_document_count``: no scan), the rest as indexed counts (guests through the
partial guest index, active users through ``lastSeenAt``, jobs through ``state``). Storage
bytes are summed over ``files`` (one small document per upload)."""
from __future__ import annotations

from typing import Any

from store.base import SiteCounts, StatsRepo
from store.mongo.common import ms


class MongoStats(StatsRepo):
    def __init__(self, db: Any):
        self.db = db

    async def site_counts(self, active_since):
        db = self.db
        totals = {name: await db[name].estimated_document_count()
                  for name in ("users", "projects", "conversations", "chat_messages", "files")}
        guests = await db["users"].count_documents({"isGuest": True})
        active = await db["users"].count_documents({"lastSeenAt": {"$gte": ms(active_since)}})
        storage = 0
        async for doc in await db["files"].aggregate(
                [{"$group": {"_id": None, "bytes": {"$sum": "$size"}}}]):
            storage = int(doc["bytes"])
        jobs = {"running": 0, "queued": 0}
        for name in ("pcap_jobs", "chat_import_jobs"):
            for state in jobs:
                jobs[state] += await db[name].count_documents({"state": state})
        return SiteCounts(users=totals["users"], guests=guests, projects=totals["projects"],
                          conversations=totals["conversations"],
                          messages=totals["chat_messages"], files=totals["files"],
                          storage_bytes=storage, active_users=active,
                          jobs_running=jobs["running"], jobs_queued=jobs["queued"])
