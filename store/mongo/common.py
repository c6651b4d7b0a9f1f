"""Helpers shared by the MongoDB repositories."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from store.errors import Conflict
from store.ids import utcnow

#: The message SQLite gives when a foreign key fails; Mongo has no foreign keys, so the
#: repositories check the referenced user themselves and answer the same way.
MISSING_REFERENCE = "the change conflicts with existing data"


def ms(dt: datetime | None) -> datetime | None:
    """BSON keeps milliseconds: trim here so what we return equals what a later read returns."""
    if dt is None:
        return None
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def now() -> datetime:
    return ms(utcnow())


async def require_user(db: Any, user_id: str) -> None:
    if await db["users"].find_one({"_id": user_id}, {"_id": 1}) is None:
        raise Conflict(MISSING_REFERENCE)
