"""Conversations, messages and cached file contexts on MongoDB.

The conversation document holds the claim of its generating reply (``generatingId`` +
``leaseUntil``): claiming is one conditional ``find_one_and_update`` on it, so two instances
can never both start a reply in one conversation. Messages are their own documents (a long
conversation is never one growing document), indexed by (conversationId, _id).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from pymongo import ReturnDocument

from store.base import (
    HISTORY_LIMIT,
    ChatMessage,
    ChatRepo,
    Conversation,
    Exchange,
    HistoryTurn,
    Page,
    RecentTurns,
)
from store.errors import Conflict, NotFound
from store.ids import new_id
from store.mongo.common import member_role, ms, now, plain
from store.query import encode_cursor, last_seen

AFTER = ReturnDocument.AFTER
BEFORE = ReturnDocument.BEFORE


async def create_chat_indexes(db: Any) -> None:
    conversations = db["conversations"]
    await conversations.create_index([("projectId", 1), ("_id", -1)], name="project_id")
    await conversations.create_index([("ownerId", 1), ("projectId", 1), ("_id", -1)],
                                     name="owner_project_id")
    await conversations.create_index("generatingId", name="generatingId", sparse=True)
    await db["chat_messages"].create_index([("conversationId", 1), ("_id", -1)],
                                           name="conversation_id")
    await db["chat_file_context"].create_index("projectId", name="projectId")


@overload
def _conversation(doc: dict) -> Conversation: ...
@overload
def _conversation(doc: None) -> None: ...
def _conversation(doc: dict | None) -> Conversation | None:
    if doc is None:
        return None
    return Conversation(id=doc["_id"], project_id=doc["projectId"], owner_id=doc["ownerId"],
                        title=doc["title"], created_at=doc["createdAt"],
                        updated_at=doc["updatedAt"], generating_id=doc.get("generatingId"),
                        lease_until=doc.get("leaseUntil"))


@overload
def _message(doc: dict) -> ChatMessage: ...
@overload
def _message(doc: None) -> None: ...
def _message(doc: dict | None) -> ChatMessage | None:
    if doc is None:
        return None
    return ChatMessage(id=doc["_id"], conversation_id=doc["conversationId"], role=doc["role"],
                       content=doc["content"], status=doc["status"], author_id=doc["authorId"],
                       attachments=tuple(doc["attachments"]), metadata=plain(doc["metadata"]),
                       created_at=doc["createdAt"], updated_at=doc["updatedAt"],
                       delta_index=doc["deltaIndex"], instance=doc.get("instance"))


def _message_doc(mid, conversation_id, role, content, status, author_id, attachments, instance,
                 at) -> dict:
    return {"_id": mid, "conversationId": conversation_id, "role": role, "content": content,
            "status": status, "authorId": author_id, "attachments": list(attachments),
            "metadata": {}, "deltaIndex": -1, "instance": instance, "createdAt": at,
            "updatedAt": at}


class MongoChat(ChatRepo):
    def __init__(self, db: Any):
        self.db = db
        self.conversations = db["conversations"]
        self.messages = db["chat_messages"]
        self.contexts = db["chat_file_context"]

    async def create_conversation(self, *, owner_id, project_id, title=None) -> Conversation:
        at = now()
        doc = {"_id": new_id(), "projectId": project_id, "ownerId": owner_id, "title": title,
               "createdAt": at, "updatedAt": at, "generatingId": None, "leaseUntil": None}
        await self.conversations.insert_one(doc)
        return _conversation(doc)

    async def get_conversation(self, conversation_id) -> Conversation | None:
        return _conversation(await self.conversations.find_one({"_id": conversation_id}))

    async def get_conversation_for(self, conversation_id, user_id):
        conv = await self.get_conversation(conversation_id)
        if conv is None or conv.project_id is None:
            return conv, None
        return conv, await member_role(self.db, conv.project_id, user_id)

    async def list_readable_conversations(self, project_ids, private_of, *, cursor=None,
                                          limit=50) -> Page[Conversation]:
        either: list[dict] = []
        if project_ids:
            either.append({"projectId": {"$in": list(dict.fromkeys(project_ids))}})
        if private_of is not None:
            either.append({"ownerId": private_of, "projectId": None})
        if not either:
            return Page([], None)
        query: dict = either[0] if len(either) == 1 else {"$or": either}
        if cursor:
            query["_id"] = {"$lt": last_seen(cursor, "c")}
        docs = await self.conversations.find(query).sort("_id", -1).limit(limit + 1).to_list(None)
        items = [_conversation(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["c", items[-1].id]) if len(docs) > limit else None)

    async def set_title(self, conversation_id, title, *,
                        only_if_unset=False) -> Conversation | None:
        query: dict = {"_id": conversation_id}
        if only_if_unset:
            query["title"] = None
        doc = await self.conversations.find_one_and_update(
            query, {"$set": {"title": title, "updatedAt": now()}}, return_document=AFTER)
        if doc is None:
            if await self.get_conversation(conversation_id) is None:
                raise NotFound("conversation not found")
            return None
        return _conversation(doc)

    async def delete_conversation(self, conversation_id) -> bool:
        await self.messages.delete_many({"conversationId": conversation_id})
        return (await self.conversations.delete_one({"_id": conversation_id})).deleted_count > 0

    async def delete_project_chat(self, project_id) -> list[str]:
        docs = await self.conversations.find({"projectId": project_id}, {"_id": 1}).to_list(None)
        ids = [d["_id"] for d in docs]
        if ids:
            await self.messages.delete_many({"conversationId": {"$in": ids}})
            await self.conversations.delete_many({"_id": {"$in": ids}})
        await self.contexts.delete_many({"projectId": project_id})
        return ids

    async def _fail(self, message_id: str, error: dict, at) -> ChatMessage | None:
        return _message(await self.messages.find_one_and_update(
            {"_id": message_id, "status": "generating"},
            {"$set": {"status": "failed", "metadata.error": error, "updatedAt": at}},
            return_document=AFTER))

    async def start_exchange(self, conversation_id, *, author_id, content, attachments,
                             instance, lease_until, history_chars=0,
                             history_limit=HISTORY_LIMIT, authorize=None) -> Exchange:
        at = now()
        user_id, reply_id = new_id(), new_id()
        if authorize is not None:  # no multi-document transaction here: checked just before
            authorize(*await self.get_conversation_for(conversation_id, author_id))
        # The claim: free, or held under a lapsed lease. BEFORE tells whose lease we took.
        before = await self.conversations.find_one_and_update(
            {"_id": conversation_id,
             "$or": [{"generatingId": None}, {"leaseUntil": {"$lt": at}}]},
            {"$set": {"generatingId": reply_id, "leaseUntil": ms(lease_until), "updatedAt": at}},
            return_document=BEFORE)
        if before is None:
            current = await self.get_conversation(conversation_id)
            if current is None:
                raise NotFound("conversation not found")
            raise Conflict("a reply is still being generated in this conversation",
                           {"messageId": current.generating_id})
        displaced = None
        if before.get("generatingId"):
            displaced = await self._fail(before["generatingId"], {
                "code": "unavailable", "reason": "instance_lost",
                "message": "the server generating this reply stopped"}, at)
        history = await self._recent_turns(conversation_id, history_chars, history_limit) \
            if history_chars > 0 else ()
        user = _message_doc(user_id, conversation_id, "user", content, "complete", author_id,
                            attachments, None, at)
        reply = _message_doc(reply_id, conversation_id, "assistant", "", "generating", None, (),
                             instance, at)
        try:
            await self.messages.insert_one(user)
            await self.messages.insert_one(reply)
        except BaseException:
            await self.conversations.update_one(
                {"_id": conversation_id, "generatingId": reply_id},
                {"$set": {"generatingId": None, "leaseUntil": None}})
            await self.messages.delete_many({"_id": {"$in": [user_id, reply_id]}})
            raise
        claimed = {**before, "generatingId": reply_id, "leaseUntil": ms(lease_until),
                   "updatedAt": at}
        return Exchange(_message(user), _message(reply), displaced, history,
                        _conversation(claimed))

    async def _recent_turns(self, conversation_id: str, chars: int, limit: int) -> tuple:
        keep = RecentTurns(chars, limit)
        cursor = self.messages.find(
            {"conversationId": conversation_id},
            {"_id": 1, "role": 1, "status": 1, "content": 1}).sort("_id", -1).limit(limit)
        try:
            async for d in cursor.batch_size(20):  # stop at the budget, not the limit
                if not keep.add(HistoryTurn(d["_id"], d["role"], d["status"], d["content"])):
                    break
        finally:
            await cursor.close()
        return keep.oldest_first()

    async def get_message(self, message_id) -> ChatMessage | None:
        return _message(await self.messages.find_one({"_id": message_id}))

    async def list_messages(self, conversation_id, *, before=None,
                            limit=50) -> Page[ChatMessage]:
        query: dict = {"conversationId": conversation_id}
        if before:
            query["_id"] = {"$lt": last_seen(before, "m")}
        docs = await self.messages.find(query).sort("_id", -1).limit(limit + 1).to_list(None)
        items = [_message(d) for d in reversed(docs[:limit])]
        return Page(items, encode_cursor(["m", items[0].id]) if len(docs) > limit else None)

    async def save_progress(self, message_id, content, delta_index) -> bool:
        result = await self.messages.update_one(
            {"_id": message_id, "status": "generating"},
            {"$set": {"content": content, "deltaIndex": delta_index, "updatedAt": now()}})
        return result.matched_count > 0

    async def finish_reply(self, message_id, *, status, content, metadata,
                           delta_index) -> ChatMessage | None:
        at = now()
        doc = await self.messages.find_one_and_update(
            {"_id": message_id, "status": "generating"},
            {"$set": {"status": status, "content": content, "metadata": metadata,
                      "deltaIndex": delta_index, "updatedAt": at}}, return_document=AFTER)
        if doc is None:
            return None
        await self.conversations.update_one(
            {"_id": doc["conversationId"], "generatingId": message_id},
            {"$set": {"generatingId": None, "leaseUntil": None, "updatedAt": at}})
        return _message(doc)

    async def renew_claims(self, reply_ids: Sequence[str], lease_until) -> set[str]:
        ids = list(reply_ids)
        if not ids:
            return set()
        await self.conversations.update_many({"generatingId": {"$in": ids}},
                                             {"$set": {"leaseUntil": ms(lease_until)}})
        docs = await self.conversations.find({"generatingId": {"$in": ids}},
                                             {"generatingId": 1}).to_list(None)
        return {d["generatingId"] for d in docs}

    async def fail_expired(self, at, error) -> list[ChatMessage]:
        at = ms(at)
        docs = await self.conversations.find(
            {"generatingId": {"$ne": None}, "leaseUntil": {"$lt": at}}).to_list(None)
        failed = []
        for doc in docs:
            # Release only the claim we saw lapse: a reply that renewed meanwhile stays.
            released = await self.conversations.update_one(
                {"_id": doc["_id"], "generatingId": doc["generatingId"],
                 "leaseUntil": {"$lt": at}},
                {"$set": {"generatingId": None, "leaseUntil": None}})
            if released.matched_count:
                message = await self._fail(doc["generatingId"], error, at)
                if message is not None:
                    failed.append(message)
        return failed

    async def get_file_context(self, file_id, sha256) -> dict | None:
        doc = await self.contexts.find_one({"_id": file_id, "sha256": sha256})
        return None if doc is None else plain(doc["data"])

    async def put_file_context(self, *, file_id, project_id, sha256, kind, data) -> None:
        await self.contexts.update_one(
            {"_id": file_id},
            {"$set": {"projectId": project_id, "sha256": sha256, "kind": kind, "data": data,
                      "createdAt": now()}}, upsert=True)

    async def count_conversations(self) -> int:
        return await self.conversations.count_documents({})

    async def count_messages(self) -> int:
        return await self.messages.count_documents({})
