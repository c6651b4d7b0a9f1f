"""Helpers shared by the MongoDB repositories."""
from __future__ import annotations

from datetime import datetime
from typing import Any, overload

from bson.int64 import Int64

from store.errors import Conflict
from store.ids import utcnow

#: The message SQLite gives when a foreign key fails; Mongo has no foreign keys, so the
#: repositories check the referenced user themselves and answer the same way.
MISSING_REFERENCE = "the change conflicts with existing data"


@overload
def ms(dt: datetime) -> datetime: ...
@overload
def ms(dt: None) -> None: ...
def ms(dt: datetime | None) -> datetime | None:
    """BSON keeps milliseconds: trim here so what we return equals what a later read returns."""
    if dt is None:
        return None
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def plain(value: Any) -> Any:
    """``value`` with every BSON int64 (decoded as ``bson.Int64``, an int subclass) made a
    plain int, as the SQLite backend returns it; dicts and lists are copied."""
    if type(value) is Int64:
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def now() -> datetime:
    return ms(utcnow())


async def member_role(db: Any, project_id: str, user_id: str) -> str | None:
    """``user_id``'s role in the project (members live in the project's document)."""
    doc = await db["projects"].find_one(
        {"_id": project_id, "members.userId": user_id},
        {"_id": 0, "members": {"$elemMatch": {"userId": user_id}}})
    return doc["members"][0]["role"] if doc else None


async def require_user(db: Any, user_id: str) -> None:
    if await db["users"].find_one({"_id": user_id}, {"_id": 1}) is None:
        raise Conflict(MISSING_REFERENCE)
