"""Users and refresh tokens on MongoDB.

Users keep lowercased copies of email and username under unique indexes, so uniqueness is
case-insensitive as on SQLite. The email index is partial (strings only): guests have none.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, overload

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from store.base import QUOTA_FIELDS, USER_FIELDS, Page, RefreshToken, TokenRepo, User, UserRepo
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id
from store.mongo.common import MISSING_REFERENCE, ms, now, require_user
from store.query import encode_cursor, last_seen

AFTER = ReturnDocument.AFTER
#: store.base field name -> document key
USER_KEYS = {
    "email": "email", "username": "username", "password_hash": "passwordHash", "role": "role",
    "is_guest": "isGuest", "is_active": "isActive", "remaining_imports": "remainingImports",
    "remaining_messages": "remainingMessages", "last_login_at": "lastLoginAt",
    "last_seen_at": "lastSeenAt",
}
assert set(USER_KEYS) == USER_FIELDS


async def create_user_indexes(db: Any) -> None:
    users, tokens = db["users"], db["refresh_tokens"]
    await users.create_index("emailLc", name="emailLc_unique", unique=True,
                             partialFilterExpression={"emailLc": {"$type": "string"}})
    await users.create_index("usernameLc", name="usernameLc_unique", unique=True)
    await tokens.create_index("familyId", name="familyId")
    await tokens.create_index("userId", name="userId")
    # Idle guests are found by when they were last seen (created, if never).
    await users.create_index([("isGuest", 1), ("idleSince", 1)], name="guest_idleSince",
                             partialFilterExpression={"isGuest": True})
    await users.create_index("lastSeenAt", name="lastSeenAt")
    await users.create_index([("role", 1), ("isActive", 1)], name="role_isActive")


def _email_is(lc: str) -> dict:
    # A partial index serves only queries that repeat its filter expression.
    return {"emailLc": {"$eq": lc, "$type": "string"}}


def _lc(value: str | None) -> str | None:
    return value.lower() if value is not None else None


@overload
def _user(doc: dict) -> User: ...
@overload
def _user(doc: None) -> None: ...
def _user(doc: dict | None) -> User | None:
    if doc is None:
        return None
    return User(
        id=doc["_id"], email=doc["email"], username=doc["username"],
        password_hash=doc["passwordHash"], role=doc["role"], is_guest=doc["isGuest"],
        is_active=doc["isActive"], remaining_imports=doc["remainingImports"],
        remaining_messages=doc["remainingMessages"], created_at=doc["createdAt"],
        updated_at=doc["updatedAt"], last_login_at=doc.get("lastLoginAt"),
        last_seen_at=doc.get("lastSeenAt"),
    )


class MongoUsers(UserRepo):
    def __init__(self, db: Any):
        self.db = db
        self.col = db["users"]

    @staticmethod
    def _taken(exc: DuplicateKeyError) -> Conflict:
        """Which unique key a duplicate hit, from the server's ``keyPattern``."""
        key_pattern = (exc.details or {}).get("keyPattern") or {}
        for name, key in (("email", "emailLc"), ("username", "usernameLc")):
            if key in key_pattern:
                return Conflict(f"{name} is already taken")
        return Conflict(MISSING_REFERENCE)

    async def create_user(self, *, email, username, password_hash, role="user", is_guest=False,
                          remaining_imports=None, remaining_messages=None) -> User:
        at = now()
        doc = {
            "_id": new_id(), "email": email, "emailLc": _lc(email), "username": username,
            "usernameLc": _lc(username), "passwordHash": password_hash, "role": role,
            "isGuest": bool(is_guest), "isActive": True, "remainingImports": remaining_imports,
            "remainingMessages": remaining_messages, "createdAt": at, "updatedAt": at,
            "lastLoginAt": None, "lastSeenAt": None, "idleSince": at,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError as exc:
            raise self._taken(exc) from None
        return _user(doc)

    async def get_user(self, user_id: str) -> User | None:
        return _user(await self.col.find_one({"_id": user_id}))

    async def get_user_by_email(self, email: str) -> User | None:
        return _user(await self.col.find_one(_email_is(email.lower())))

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return []
        docs = await self.col.find({"_id": {"$in": ids}}).sort("_id", 1).to_list(None)
        return [_user(d) for d in docs]

    async def update_user(self, user_id: str, **fields) -> User:
        unknown = set(fields) - USER_FIELDS
        if unknown:
            raise BadRequest(f"unknown user fields: {sorted(unknown)}")
        values = {USER_KEYS[k]: v for k, v in fields.items()}
        for key in ("isGuest", "isActive"):
            if key in values:
                values[key] = bool(values[key])
        for key in ("lastLoginAt", "lastSeenAt"):
            if key in values:
                values[key] = ms(values[key])
        if values.get("lastSeenAt") is not None:
            values["idleSince"] = values["lastSeenAt"]
        if "email" in values:
            values["emailLc"] = _lc(values["email"])
        if "username" in values:
            values["usernameLc"] = _lc(values["username"])
        values["updatedAt"] = now()
        try:
            doc = await self.col.find_one_and_update({"_id": user_id}, {"$set": values},
                                                     return_document=AFTER)
        except DuplicateKeyError as exc:
            raise self._taken(exc) from None
        if doc is None:
            raise NotFound("user not found")
        return _user(doc)

    async def spend_quota(self, user_id: str, quota: str) -> int | None:
        if quota not in QUOTA_FIELDS:
            raise BadRequest(f"unknown quota {quota!r}")
        key = USER_KEYS[quota]
        # Read first: registered users (unlimited) then cost one round trip, not two.
        doc = await self.col.find_one({"_id": user_id}, {key: 1})
        if doc is None:
            raise NotFound("user not found")
        if doc.get(key) is None:
            return -1
        doc = await self.col.find_one_and_update(
            {"_id": user_id, key: {"$gt": 0}}, {"$inc": {key: -1}}, projection={key: 1},
            return_document=AFTER)
        return None if doc is None else doc[key]

    async def list_users(self, *, cursor=None, limit=50, q=None, role=None, active=None,
                         guest=None) -> Page[User]:
        query: dict = {}
        if cursor:
            query["_id"] = {"$gt": last_seen(cursor, "u")}
        if q:
            # An anchored, case-sensitive regex on the lowercased copies: an index range.
            pattern = {"$regex": "^" + re.escape(q.lower())}
            query["$or"] = [{"emailLc": pattern}, {"usernameLc": pattern}]
        for key, value in (("role", role), ("isActive", active), ("isGuest", guest)):
            if value is not None:
                query[key] = value
        docs = await self.col.find(query).sort("_id", 1).limit(limit + 1).to_list(None)
        items = [_user(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["u", items[-1].id]) if len(docs) > limit else None)

    async def get_user_by_login(self, login):
        if "@" in login:
            return await self.get_user_by_email(login)
        return _user(await self.col.find_one({"usernameLc": login.lower()}))

    async def count_admins(self):
        return await self.col.count_documents({"role": "admin", "isActive": True})

    async def list_idle_guests(self, before, limit=100):
        docs = self.col.find({"isGuest": True, "idleSince": {"$lt": ms(before)}}, {"_id": 1})
        return [d["_id"] for d in await docs.sort("idleSince", 1).limit(limit).to_list(None)]

    async def delete_user(self, user_id: str) -> bool:
        # What SQLite cascades through foreign keys, done by hand; the user goes last so a
        # failure half-way leaves something a retry can finish.
        await self.db["refresh_tokens"].delete_many({"userId": user_id})
        await self.db["projects"].update_many(
            {"members.userId": user_id}, {"$pull": {"members": {"userId": user_id}}})
        return (await self.col.delete_one({"_id": user_id})).deleted_count > 0

    async def count_users(self) -> int:
        return await self.col.count_documents({})


def _token(doc: dict | None) -> RefreshToken | None:
    if doc is None:
        return None
    return RefreshToken(
        token_hash=doc["_id"], user_id=doc["userId"], family_id=doc["familyId"],
        expires_at=doc["expiresAt"], created_at=doc["createdAt"], used_at=doc["usedAt"],
        revoked=doc["revoked"])


class MongoTokens(TokenRepo):
    def __init__(self, db: Any):
        self.db = db
        self.col = db["refresh_tokens"]

    async def create_refresh_token(self, *, token_hash, user_id, family_id, expires_at):
        await require_user(self.db, user_id)
        doc = {"_id": token_hash, "userId": user_id, "familyId": family_id,
               "expiresAt": ms(expires_at), "createdAt": now(), "usedAt": None, "revoked": False}
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("token_hash is already taken") from None
        return _token(doc)

    async def consume_refresh_token(self, token_hash):
        doc = await self.col.find_one_and_update(
            {"_id": token_hash, "usedAt": None, "revoked": False}, {"$set": {"usedAt": now()}},
            return_document=AFTER)
        if doc is not None:
            return _token(doc), True
        return _token(await self.col.find_one({"_id": token_hash})), False

    async def revoke_refresh_token(self, token_hash, user_id):
        doc = await self.col.find_one_and_update(
            {"_id": token_hash, "userId": user_id}, {"$set": {"revoked": True}},
            return_document=AFTER)
        return _token(doc) if doc is not None else None

    async def revoke_family(self, family_id):
        result = await self.col.update_many({"familyId": family_id, "revoked": False},
                                            {"$set": {"revoked": True}})
        return result.modified_count

    async def revoke_user_sessions(self, user_id, keep=None):
        # Families first, then the write: a token created between the two belongs to a
        # sign-in that started after the revocation and stays valid.
        families = await self.col.distinct(
            "familyId", {"userId": user_id, "revoked": False, "familyId": {"$ne": keep}})
        await self.col.update_many({"userId": user_id, "familyId": {"$in": families}},
                                   {"$set": {"revoked": True}})
        return sorted(families)

    async def session_live(self, family_id):
        return await self.col.find_one({"familyId": family_id, "revoked": False},
                                       {"_id": 1}) is not None
