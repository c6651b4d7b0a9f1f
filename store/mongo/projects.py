"""Projects on MongoDB, members embedded as ``members: [{userId, role, addedAt}]``.

Embedding makes a project one document (read whole, deleted whole) and an authorization
check one indexed find on ``members.userId``.
"""
from __future__ import annotations

from typing import Any, overload

from pymongo import ReturnDocument

from store.base import PROJECT_FIELDS, Member, Project, ProjectRepo
from store.errors import BadRequest, NotFound
from store.ids import new_id
from store.mongo.common import member_role, now, require_user

AFTER = ReturnDocument.AFTER
#: Tries of "change the role, else append" before giving up on a membership that keeps
#: changing underneath; each try ends in one atomic single-document update.
SET_MEMBER_TRIES = 3


async def create_project_indexes(db: Any) -> None:
    await db["projects"].create_index("members.userId", name="members_userId")


@overload
def _project(doc: dict) -> Project: ...
@overload
def _project(doc: None) -> None: ...
def _project(doc: dict | None) -> Project | None:
    if doc is None:
        return None
    # Same order as SQLite's ORDER BY added_at, user_id.
    members = sorted(doc["members"], key=lambda m: (m["addedAt"], m["userId"]))
    return Project(
        id=doc["_id"], name=doc["name"], description=doc["description"], color=doc["color"],
        owner_id=doc["ownerId"], created_at=doc["createdAt"], updated_at=doc["updatedAt"],
        members=tuple(Member(m["userId"], m["role"], m["addedAt"]) for m in members))


def _must(project: Project | None, message: str = "project not found") -> Project:
    if project is None:
        raise NotFound(message)
    return project


class MongoProjects(ProjectRepo):
    def __init__(self, db: Any):
        self.db = db
        self.col = db["projects"]

    async def _exists(self, project_id: str) -> bool:
        return await self.col.find_one({"_id": project_id}, {"_id": 1}) is not None

    async def create_project(self, *, owner_id, name, description="", color=None) -> Project:
        await require_user(self.db, owner_id)
        at = now()
        doc = {"_id": new_id(), "name": name, "description": description, "color": color,
               "ownerId": owner_id, "createdAt": at, "updatedAt": at,
               "members": [{"userId": owner_id, "role": "owner", "addedAt": at}]}
        await self.col.insert_one(doc)
        return _project(doc)

    async def get_project(self, project_id) -> Project | None:
        return _project(await self.col.find_one({"_id": project_id}))

    async def list_projects_for_user(self, user_id) -> list[Project]:
        docs = await self.col.find({"members.userId": user_id}).sort("_id", 1).to_list(None)
        return [_project(d) for d in docs]

    async def update_project(self, project_id, **fields) -> Project:
        unknown = set(fields) - PROJECT_FIELDS
        if unknown:
            raise BadRequest(f"unknown project fields: {sorted(unknown)}")
        doc = await self.col.find_one_and_update(
            {"_id": project_id}, {"$set": {**fields, "updatedAt": now()}}, return_document=AFTER)
        return _must(_project(doc))

    async def delete_project(self, project_id) -> bool:
        return (await self.col.delete_one({"_id": project_id})).deleted_count > 0

    async def get_member_role(self, project_id, user_id) -> str | None:
        return await member_role(self.db, project_id, user_id)

    async def set_member(self, project_id, user_id, role) -> Project:
        if not await self._exists(project_id):
            raise NotFound("project not found")
        await require_user(self.db, user_id)
        at = now()
        # Change the member's role, else append the member: each one atomic update. The
        # append's "$ne" filter keeps a racing add from duplicating the member; losing that
        # race means the role update wins on the next try.
        for _ in range(SET_MEMBER_TRIES):
            doc = await self.col.find_one_and_update(
                {"_id": project_id, "members.userId": user_id},
                {"$set": {"members.$.role": role, "updatedAt": at}}, return_document=AFTER)
            if doc is None:
                doc = await self.col.find_one_and_update(
                    {"_id": project_id, "members.userId": {"$ne": user_id}},
                    {"$push": {"members": {"userId": user_id, "role": role, "addedAt": at}},
                     "$set": {"updatedAt": at}}, return_document=AFTER)
            if doc is not None:
                return _must(_project(doc))
        return _must(await self.get_project(project_id))

    async def set_owner(self, project_id, user_id) -> Project:
        await self.set_member(project_id, user_id, "owner")
        doc = await self.col.find_one_and_update(
            {"_id": project_id}, {"$set": {"ownerId": user_id, "updatedAt": now()}},
            return_document=AFTER)
        return _must(_project(doc) if doc else None)

    async def count_memberships(self, user_ids) -> dict[str, int]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        cursor = await self.col.aggregate([
            {"$match": {"members.userId": {"$in": ids}}},
            {"$unwind": "$members"},
            {"$match": {"members.userId": {"$in": ids}}},
            {"$group": {"_id": "$members.userId", "n": {"$sum": 1}}}])
        return {d["_id"]: int(d["n"]) async for d in cursor}

    async def remove_member(self, project_id, user_id) -> Project:
        doc = await self.col.find_one_and_update(
            {"_id": project_id, "members.userId": user_id},
            {"$pull": {"members": {"userId": user_id}}, "$set": {"updatedAt": now()}},
            return_document=AFTER)
        if doc is None:
            _must(await self.get_project(project_id))
            raise NotFound("not a member of this project")
        return _project(doc)

    async def count_projects(self) -> int:
        return await self.col.count_documents({})
