"""File records on MongoDB (the bytes live in the blob store, GridFS beside MongoDB).

One document per file, ``_id`` = file id; lists page on the (projectId, _id) index.
"""
from __future__ import annotations

from typing import Any, overload

from pymongo.errors import DuplicateKeyError

from store.base import FileRecord, FileRepo, Page
from store.errors import Conflict
from store.mongo.common import now, plain
from store.query import encode_cursor, last_seen


async def create_file_indexes(db: Any) -> None:
    await db["files"].create_index([("projectId", 1), ("_id", 1)], name="projectId_id")


@overload
def _file(doc: dict) -> FileRecord: ...
@overload
def _file(doc: None) -> None: ...
def _file(doc: dict | None) -> FileRecord | None:
    if doc is None:
        return None
    return FileRecord(id=doc["_id"], project_id=doc["projectId"], name=doc["name"],
                      size=plain(doc["size"]), mime=doc["mime"], sha256=doc["sha256"],
                      uploader_id=doc["uploaderId"], storage_key=doc["storageKey"],
                      created_at=doc["createdAt"])


class MongoFiles(FileRepo):
    def __init__(self, db: Any):
        self.db = db
        self.col = db["files"]

    async def create_file(self, *, file_id, project_id, name, size, mime, sha256, uploader_id,
                          storage_key) -> FileRecord:
        doc = {"_id": file_id, "projectId": project_id, "name": name, "size": size,
               "mime": mime, "sha256": sha256, "uploaderId": uploader_id,
               "storageKey": storage_key, "createdAt": now()}
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("id is already taken") from None
        return _file(doc)

    async def get_file(self, file_id) -> FileRecord | None:
        return _file(await self.col.find_one({"_id": file_id}))

    async def list_files_in(self, project_ids, *, cursor=None, limit=50) -> Page[FileRecord]:
        query = {"projectId": {"$in": list(dict.fromkeys(project_ids))},
                 "_id": {"$gt": last_seen(cursor, "f") or ""}}
        docs = await self.col.find(query).sort("_id", 1).limit(limit + 1).to_list(None)
        items = [_file(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["f", items[-1].id]) if len(docs) > limit else None)

    async def delete_file(self, file_id) -> FileRecord | None:
        return _file(await self.col.find_one_and_delete({"_id": file_id}))

    async def delete_project_files(self, project_id) -> list[FileRecord]:
        # Delete exactly the records returned, so the caller removes every blob it gets
        # back; a file uploaded meanwhile keeps its record (and its blob) rather than
        # losing the record and leaking the blob.
        docs = await self.col.find({"projectId": project_id}).sort("_id", 1).to_list(None)
        if docs:
            await self.col.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return [_file(d) for d in docs]
