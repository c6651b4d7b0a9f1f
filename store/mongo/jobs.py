"""Durable leased jobs on MongoDB (``JobQueue``): one document per file (``_id`` = file id)
in a collection of the kind's own (``pcap_jobs``, ``chat_import_jobs``). Claims and lease
renewals are single-document conditional updates, fenced by ``attempt``; a kind drops
what its jobs derived in ``_on_delete``."""
from __future__ import annotations

from typing import Any, overload

from pymongo import ReturnDocument

from store.base import Job, JobQueue
from store.ids import new_id
from store.mongo import common

AFTER = ReturnDocument.AFTER


async def create_job_indexes(jobs: Any) -> None:
    await jobs.create_index([("state", 1), ("queueKey", 1)], name="state_queueKey")
    await jobs.create_index("projectId", name="projectId")


@overload
def job_doc(doc: dict) -> Job: ...
@overload
def job_doc(doc: None) -> None: ...
def job_doc(doc: dict | None) -> Job | None:
    if doc is None:
        return None
    return Job(file_id=doc["_id"], project_id=doc["projectId"], state=doc["state"],
               attempt=doc["attempt"], owner=doc.get("owner"),
               lease_until=doc.get("leaseUntil"),
               progress=common.plain(doc.get("progress") or {}),
               error=doc.get("error"), requested_by=doc["requestedBy"],
               queue_key=doc["queueKey"], created_at=doc["createdAt"],
               updated_at=doc["updatedAt"], started_at=doc.get("startedAt"),
               finished_at=doc.get("finishedAt"), params=common.plain(doc.get("params") or {}))


class MongoJobs(JobQueue):
    def __init__(self, jobs: Any):
        self.jobs = jobs

    async def _on_delete(self, file_id: str) -> None:
        """Drop what the job derived (before the job document goes)."""

    async def _owns(self, file_id: str, attempt: int) -> bool:
        return await self.jobs.find_one({"_id": file_id, "state": "running",
                                         "attempt": attempt}, {"_id": 1}) is not None

    async def queue_job(self, *, file_id, project_id, requested_by, params=None) -> Job:
        at = common.now()
        fresh = {"state": "queued", "owner": None, "leaseUntil": None, "progress": {},
                 "error": None, "requestedBy": requested_by, "queueKey": new_id(),
                 "updatedAt": at, "startedAt": None, "finishedAt": None,
                 "params": params or {}}
        # Requeue a finished job; an active one is left as it is.
        doc = await self.jobs.find_one_and_update(
            {"_id": file_id, "state": {"$nin": ["queued", "running"]}}, {"$set": fresh},
            return_document=AFTER)
        if doc is None:
            await self.jobs.update_one(
                {"_id": file_id},
                {"$setOnInsert": {**fresh, "projectId": project_id, "attempt": 0,
                                  "createdAt": at}}, upsert=True)
            doc = await self.jobs.find_one({"_id": file_id})
        return job_doc(doc)

    async def get_job(self, file_id) -> Job | None:
        return job_doc(await self.jobs.find_one({"_id": file_id}))

    async def claim_job(self, *, instance, now, lease_s) -> Job | None:
        stamp = common.now()
        update = {"$set": {"state": "running", "owner": instance, "leaseUntil": now + lease_s,
                           "updatedAt": stamp, "startedAt": stamp}, "$inc": {"attempt": 1}}
        for query in ({"state": "running", "leaseUntil": {"$lt": now}}, {"state": "queued"}):
            doc = await self.jobs.find_one_and_update(query, update, sort=[("queueKey", 1)],
                                                      return_document=AFTER)
            if doc is not None:
                return job_doc(doc)
        return None

    async def renew_job(self, file_id, *, attempt, lease_until, progress=None) -> bool:
        fields = {"leaseUntil": lease_until, "updatedAt": common.now()}
        if progress is not None:
            fields["progress"] = progress
        result = await self.jobs.update_one({"_id": file_id, "state": "running",
                                             "attempt": attempt}, {"$set": fields})
        return result.matched_count > 0

    async def finish_job(self, file_id, *, attempt, state, error=None, progress=None) -> bool:
        at = common.now()
        fields = {"state": state, "error": error, "owner": None, "leaseUntil": None,
                  "updatedAt": at, "finishedAt": at}
        if progress is not None:
            fields["progress"] = progress
        result = await self.jobs.update_one({"_id": file_id, "state": "running",
                                             "attempt": attempt}, {"$set": fields})
        return result.matched_count > 0

    async def cancel_job(self, file_id) -> Job | None:
        at = common.now()
        doc = await self.jobs.find_one_and_update(
            {"_id": file_id, "state": {"$in": ["queued", "running"]}},
            {"$set": {"state": "cancelled", "owner": None, "leaseUntil": None,
                      "updatedAt": at, "finishedAt": at}})
        return job_doc(doc)

    async def queue_position(self, file_id) -> int | None:
        doc = await self.jobs.find_one({"_id": file_id}, {"state": 1, "queueKey": 1})
        if doc is None or doc["state"] != "queued":
            return None
        return await self.jobs.count_documents({"state": "queued",
                                                "queueKey": {"$lte": doc["queueKey"]}})

    async def count_jobs(self) -> dict[str, int]:
        return {state: await self.jobs.count_documents({"state": state})
                for state in ("queued", "running")}

    async def delete_job(self, file_id) -> None:
        await self._on_delete(file_id)
        await self.jobs.delete_one({"_id": file_id})

    async def delete_project_jobs(self, project_id) -> list[str]:
        docs = await self.jobs.find({"projectId": project_id}, {"_id": 1}).to_list(None)
        ids = [d["_id"] for d in docs]
        for file_id in ids:
            await self.delete_job(file_id)
        return ids
