"""Imported chats (chat-history import) on MongoDB, with text search.

- ``imported_chats``: one document per chat; ``state`` is hidden → visible (or deleting while
  its lines are removed); ``publishing`` is set while ``publish_chats`` runs, which stops
  further ``add_lines``.
- ``chat_lines``: one document per message, ``_id`` = ``"<chat id>.<seq>"`` (the line id),
  indexed by (chatId, seq) and (chatId, author, seq) for keyset pages. ``fold`` holds the
  text's tokens lowercased and without diacritics, joined by single spaces: words, phrases
  and prefixes are anchored regexes on it (``(?:^| )word(?: |$)``, ``(?:^| )pre``), so every
  backend gives a query the same meaning. ``sk`` / ``rk`` are ``"<chat id>:<platform id>"`` of
  the message and of the one it answers: publishing resolves replies with one ``$lookup``
  on ``sk`` whose result is ``$merge``d into the lines, server-side.
- The text index is ``{projectId: 1, text: "text"}`` with ``default_language: "none"`` (no
  stemming, no stop words; version 3 indexes are case- and diacritics-insensitive). A search
  is one aggregation: ``$text`` with every word as a quoted phrase (so the server ANDs them),
  the ``fold`` regexes for exact word and phrase boundaries and for prefix terms (which
  ``$text`` cannot do), ranked by ``textScore`` then newest first and keyset-paged on
  (score, time, id). MongoDB's textScore depends only on the document, so pages stay
  stable while other imports are indexed. A query of prefix terms only has no ``$text``:
  its hits score 0 and come newest first.

Publishing (counts, participants, first/last time) is one ``$group`` aggregation; the
chats of an import then become visible with one ``update_many`` (not atomic across
documents: a reader racing it may briefly see some of an import's chats before others).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import BulkWriteError

from ingest.chats.model import EPOCH, MS
from store import chat_text
from store.base import (
    ChatHit,
    ChatLine,
    ChatParticipant,
    ImportedChat,
    ImportedChatRepo,
    MessageRow,
    Page,
)
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id
from store.mongo import common
from store.query import (
    decode_cursor,
    encode_cursor,
    last_seen,
    page_limit,
    parse_query,
)

MAX_SEQ = (1 << 32) - 1
#: Pages of one search reach at most this many hits.
SEARCH_WINDOW = 2_000
MAX_LINES_PAGE = 1000
MAX_HITS_PAGE = 100
DUPLICATE_KEY = 11000



async def create_imported_chat_indexes(db: Any) -> None:
    chats, lines = db["imported_chats"], db["chat_lines"]
    await chats.create_index([("projectId", 1), ("state", 1), ("_id", -1)],
                             name="projectId_state_id")
    await chats.create_index([("fileId", 1), ("attempt", 1)], name="fileId_attempt")
    await lines.create_index([("chatId", 1), ("seq", 1)], name="chatId_seq", unique=True)
    await lines.create_index([("chatId", 1), ("author", 1), ("seq", 1)],
                             name="chatId_author_seq")
    await lines.create_index("sk", name="sk", sparse=True)
    await lines.create_index([("projectId", 1), ("text", "text")], name="projectId_text",
                             default_language="none")


# -- folding: MongoDB's text-index tokens, approximately ----------------------------------

#: Pattern_Syntax outside ASCII (Unicode PropList): delimiters of MongoDB's tokenizer.
_PATTERN_SYNTAX = ((0xA1, 0xA7), (0xA9, 0xA9), (0xAB, 0xAC), (0xAE, 0xAE), (0xB0, 0xB1),
                   (0xB6, 0xB6), (0xBB, 0xBB), (0xBF, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7),
                   (0x2010, 0x2027), (0x2030, 0x203E), (0x2041, 0x2053), (0x2055, 0x205E),
                   (0x2190, 0x245F), (0x2500, 0x2775), (0x2794, 0x2BFF), (0x2E00, 0x2E7F),
                   (0x3001, 0x3003), (0x3008, 0x3020), (0x3030, 0x3030), (0xFD3E, 0xFD3F),
                   (0xFE45, 0xFE46))


def _fold_table() -> dict[int, int | None]:
    """Delimiters (white space, dashes, quotation marks, punctuation but ``_``,
    Pattern_Syntax) become spaces and combining marks vanish (BMP; beyond it, characters
    are rarely either)."""
    table: dict[int, int | None] = {}
    for lo, hi in _PATTERN_SYNTAX:
        table.update(dict.fromkeys(range(lo, hi + 1), 0x20))
    for cp in range(0x10000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Mn":
            table[cp] = None
        elif ch.isspace() or cat in ("Cc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po") \
                or (cp < 128 and not ch.isalnum() and ch != "_"):
            table[cp] = 0x20
    return table


_FOLD = _fold_table()
_SPLIT = {cp: v for cp, v in _FOLD.items() if v is not None}  # keeps lengths: for spans
_TOKEN = re.compile(r"\S+")


_ASCII_TOKEN = re.compile(r"[a-z0-9_]+")


def fold(text: str) -> str:
    """``text``'s tokens, lowercased and without diacritics, joined by single spaces."""
    text = text.lower()
    if text.isascii():
        return " ".join(_ASCII_TOKEN.findall(text))
    return " ".join(unicodedata.normalize("NFD", text).translate(_FOLD).split())


def folded_query(query: str) -> list[tuple[list[str], bool]]:
    """``parse_query``'s terms as the folded tokens the text copy holds; terms that fold to
    nothing are dropped (BadRequest when none is left)."""
    terms = [(fold(text).split(), prefix) for text, prefix in parse_query(query)]
    terms = [(tokens, prefix) for tokens, prefix in terms if tokens]
    if not terms:
        raise BadRequest("the query has nothing to search for")
    return terms


def _regex(tokens: list[str], prefix: bool) -> str:
    return "(?:^| )" + re.escape(" ".join(tokens)) + ("" if prefix else "(?: |$)")


def snippet(text: str, terms: list[tuple[list[str], bool]]) -> str:
    """About ``SNIPPET_TOKENS`` tokens of ``text`` around its first hit, hits in « »."""
    spans = [(m.start(), m.end(), fold(m.group()))
             for m in _TOKEN.finditer(text.translate(_SPLIT))]
    return chat_text.snippet(text, [s for s in spans if s[2]], terms)


# -- conversions ----------------------------------------------------------------------------

def _ms_floor(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return EPOCH + ((dt - EPOCH) // MS) * MS


def _ms_ceil(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return EPOCH - ((EPOCH - dt) // MS) * MS




def _line_id(chat_id: str, seq: int) -> str:
    return f"{chat_id}.{seq}"


def _chat(doc: dict) -> ImportedChat:
    return ImportedChat(
        id=doc["_id"], project_id=doc["projectId"], file_id=doc["fileId"], name=doc["name"],
        platform=doc["platform"],
        participants=tuple(ChatParticipant(p["name"], p["messages"])
                           for p in doc.get("participants", [])),
        message_count=doc.get("messageCount", 0), system_count=doc.get("systemCount", 0),
        first_time=doc.get("firstTime"), last_time=doc.get("lastTime"),
        imported_by=doc["importedBy"], created_at=doc["createdAt"])


def _line(doc: dict) -> ChatLine:
    chat_id = doc["chatId"]
    reply = doc.get("replyTo")
    sk = doc.get("sk")
    return ChatLine(
        id=doc["_id"], chat_id=chat_id, seq=doc["seq"], time=doc["time"],
        author=doc["author"], author_id=doc.get("authorId"), text=doc["text"],
        kind=doc["kind"], reply_to=None if reply is None else _line_id(chat_id, reply),
        source_id=None if sk is None else sk.split(":", 1)[1],
        attachments=tuple(common.plain(doc.get("att", []))),
        reactions=tuple(common.plain(doc.get("react", []))),
        edited=bool(doc.get("edited")), deleted=bool(doc.get("deleted")))


def _doc(chat: dict, seq: int, r: MessageRow) -> dict:
    cid = chat["_id"]
    time, author, text, kind, author_id, source_id, reply_source, attachments, reactions, \
        edited, deleted = r
    doc: dict[str, Any] = {"_id": _line_id(cid, seq), "chatId": cid,
                           "projectId": chat["projectId"], "seq": seq,
                           "time": EPOCH + time * MS, "author": author, "text": text,
                           "fold": fold(text), "kind": kind}
    if author_id is not None:
        doc["authorId"] = author_id
    if source_id is not None:
        doc["sk"] = f"{cid}:{source_id}"
    if reply_source is not None:
        doc["rk"] = f"{cid}:{reply_source}"
    if attachments:
        doc["att"] = attachments
    if reactions:
        doc["react"] = reactions
    if edited:
        doc["edited"] = True
    if deleted:
        doc["deleted"] = True
    return doc


_LINE_FIELDS = {"fold": 0, "projectId": 0, "rk": 0}


class MongoImportedChats(ImportedChatRepo):
    def __init__(self, db: Any):
        self.db = db
        self.chats = db["imported_chats"]
        self.lines = db["chat_lines"]

    async def _newer_attempt(self, file_id: str, attempt: int) -> bool:
        return await self.chats.find_one({"fileId": file_id, "attempt": {"$gt": attempt}},
                                         {"_id": 1}) is not None

    async def _writable(self, chat_id: str, attempt: int) -> dict | None:
        chat = await self.chats.find_one({"_id": chat_id},
                                         {"state": 1, "attempt": 1, "projectId": 1,
                                          "publishing": 1})
        if chat is None or chat["state"] != "hidden" or chat["attempt"] != attempt \
                or chat.get("publishing"):
            return None
        return chat

    # -- import ---------------------------------------------------------------------------

    async def begin_chat(self, *, project_id, file_id, attempt, name, platform,
                         imported_by) -> str:
        if await self._newer_attempt(file_id, attempt):
            raise Conflict("a newer import of this file is under way")
        chat_id = new_id()
        await self.chats.insert_one({
            "_id": chat_id, "projectId": project_id, "fileId": file_id, "attempt": attempt,
            "state": "hidden", "name": name, "platform": platform, "participants": [],
            "messageCount": 0, "systemCount": 0, "firstTime": None, "lastTime": None,
            "importedBy": imported_by, "createdAt": common.now()})
        return chat_id

    async def add_lines(self, chat_id, attempt, first_seq,
                        rows: Sequence[MessageRow]) -> bool:
        if not isinstance(first_seq, int) or first_seq < 1 \
                or first_seq + len(rows) - 1 > MAX_SEQ:
            raise BadRequest(f"seq must be between 1 and {MAX_SEQ}")
        chat = await self._writable(chat_id, attempt)
        if chat is None:
            return False
        if not rows:
            return True
        docs = [_doc(chat, first_seq + i, r) for i, r in enumerate(rows)]
        try:
            await self.lines.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # seqs sent again: the new version replaces the old
            errors = exc.details.get("writeErrors", []) if exc.details else []
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            again = [docs[e["index"]] for e in errors]
            await self.lines.delete_many({"_id": {"$in": [d["_id"] for d in again]}})
            await self.lines.insert_many(again, ordered=False)
        if await self._writable(chat_id, attempt) is None:  # discarded or published meanwhile
            await self.lines.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            return False
        return True

    async def publish_chats(self, file_id, attempt) -> list[ImportedChat]:
        if await self._newer_attempt(file_id, attempt):
            return []
        query = {"fileId": file_id, "attempt": attempt, "state": "hidden"}
        hidden = await self.chats.find(query, {"_id": 1}).sort("_id", 1).to_list(None)
        ids = [d["_id"] for d in hidden]
        if ids:
            await self.chats.update_many({**query, "_id": {"$in": ids}},
                                         {"$set": {"publishing": True}})
            await self._resolve_replies(ids)
            for chat_id, fields in (await self._stats(ids)).items():
                await self.chats.update_one({"_id": chat_id, "state": "hidden",
                                             "attempt": attempt}, {"$set": fields})
            if await self._newer_attempt(file_id, attempt):
                return []
            await self.chats.update_many({**query, "_id": {"$in": ids}},
                                         {"$set": {"state": "visible"},
                                          "$unset": {"publishing": ""}})
        docs = await self.chats.find({"fileId": file_id, "attempt": attempt,
                                      "state": "visible"}).sort("_id", 1).to_list(None)
        return [_chat(d) for d in docs]

    async def _stats(self, ids: list[str]) -> dict[str, dict]:
        stats: dict[str, dict] = {cid: {"authors": {}, "messageCount": 0, "systemCount": 0,
                                        "firstTime": None, "lastTime": None} for cid in ids}
        cursor = await self.lines.aggregate([
            {"$match": {"chatId": {"$in": ids}}},
            {"$group": {"_id": {"c": "$chatId", "a": "$author", "k": "$kind"},
                        "n": {"$sum": 1}, "first": {"$min": "$time"},
                        "last": {"$max": "$time"}}}])
        async for group in cursor:
            s, key, n = stats[group["_id"]["c"]], group["_id"], group["n"]
            if key["k"] == "message":
                s["authors"][key["a"]] = s["authors"].get(key["a"], 0) + n
                s["messageCount"] += n
            elif key["k"] == "system":
                s["systemCount"] += n
            if s["firstTime"] is None or group["first"] < s["firstTime"]:
                s["firstTime"] = group["first"]
            if s["lastTime"] is None or group["last"] > s["lastTime"]:
                s["lastTime"] = group["last"]
        for s in stats.values():
            authors = sorted(s.pop("authors").items(), key=lambda a: (-a[1], a[0]))
            s["participants"] = [{"name": a, "messages": n} for a, n in authors]
        return stats

    async def _resolve_replies(self, ids: list[str]) -> None:
        cursor = await self.lines.aggregate([
            {"$match": {"chatId": {"$in": ids}, "rk": {"$exists": True}}},
            {"$lookup": {"from": "chat_lines", "localField": "rk", "foreignField": "sk",
                         "as": "to"}},
            {"$project": {"_id": 1, "replyTo": {"$min": "$to.seq"}}},
            {"$match": {"replyTo": {"$ne": None}}},
            {"$merge": {"into": "chat_lines", "on": "_id", "whenMatched": "merge",
                        "whenNotMatched": "discard"}}])
        await cursor.to_list(None)

    async def discard_import(self, file_id) -> None:
        await self._delete({"fileId": file_id}, ("hidden",))

    async def _delete(self, query: dict, states: tuple[str, ...]) -> list[ImportedChat]:
        docs = await self.chats.find({**query, "state": {"$in": list(states)}}) \
            .sort("_id", 1).to_list(None)
        if docs:
            await self.chats.update_many({"_id": {"$in": [d["_id"] for d in docs]}},
                                         {"$set": {"state": "deleting"}})
        doomed = await self.chats.find({**query, "state": "deleting"}, {"_id": 1}) \
            .to_list(None)
        for d in doomed:
            await self.lines.delete_many({"chatId": d["_id"]})
            await self.chats.delete_one({"_id": d["_id"], "state": "deleting"})
        return [_chat(d) for d in docs]

    # -- reading --------------------------------------------------------------------------

    async def _visible(self, chat_id: str) -> dict | None:
        return await self.chats.find_one({"_id": chat_id, "state": "visible"})

    async def get_chat(self, chat_id) -> ImportedChat | None:
        doc = await self._visible(chat_id)
        return _chat(doc) if doc else None

    async def list_chats(self, project_id, *, cursor=None, limit=50) -> Page[ImportedChat]:
        limit = page_limit(limit, MAX_LINES_PAGE)
        query: dict[str, Any] = {"projectId": project_id, "state": "visible"}
        if cursor:
            query["_id"] = {"$lt": last_seen(cursor, "k")}
        docs = await self.chats.find(query).sort("_id", -1).limit(limit + 1).to_list(None)
        items = [_chat(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["k", items[-1].id]) if len(docs) > limit else None)

    async def list_lines(self, chat_id, *, cursor=None, limit=100, author=None, since=None,
                         until=None, around=None) -> Page[ChatLine]:
        limit = page_limit(limit, MAX_LINES_PAGE)
        after = last_seen(cursor, "l", int)
        if await self._visible(chat_id) is None:
            if around is not None and after is None:
                raise NotFound("message not found")
            return Page([], None)
        query: dict[str, Any] = {"chatId": chat_id}
        if author is not None:
            query["author"] = author
        if since is not None or until is not None:
            query["time"] = {}
            if since is not None:
                query["time"]["$gte"] = _ms_ceil(since)
            if until is not None:
                query["time"]["$lte"] = _ms_floor(until)
        if around is not None and after is None:
            target = await self.lines.find_one({"_id": str(around), "chatId": chat_id},
                                               {"seq": 1})
            if target is None:
                raise NotFound("message not found")
            seq = target["seq"]
            before = await self.lines.find({**query, "seq": {"$lt": seq}}, _LINE_FIELDS) \
                .sort("seq", -1).limit(max(limit // 2, 0) or 1).to_list(None)
            before = before[:limit // 2]
            rest = limit - len(before)
            docs = await self.lines.find({**query, "seq": {"$gte": seq}}, _LINE_FIELDS) \
                .sort("seq", 1).limit(rest + 1).to_list(None)
            more = len(docs) > rest
            docs = before[::-1] + docs[:rest]
        else:
            docs = await self.lines.find({**query, "seq": {"$gt": after or 0}}, _LINE_FIELDS) \
                .sort("seq", 1).limit(limit + 1).to_list(None)
            more = len(docs) > limit
            docs = docs[:limit]
        items = [_line(d) for d in docs]
        return Page(items, encode_cursor(["l", items[-1].seq]) if more and items else None)

    async def search(self, project_id, query, *, chat_id=None, author=None, since=None,
                     until=None, cursor=None, limit=20) -> Page[ChatHit]:
        terms = folded_query(query)
        limit = page_limit(limit, MAX_HITS_PAGE)
        after = decode_cursor(cursor, "t", (float, int, str, int)) if cursor else None
        served = after[3] if after else 0
        if served >= SEARCH_WINDOW:
            return Page([], None)
        if chat_id is not None:
            chat = await self.chats.find_one({"_id": chat_id, "projectId": project_id,
                                              "state": "visible"}, {"_id": 1})
            if chat is None:
                return Page([], None)
            scope: Any = chat_id
        else:
            visible = await self.chats.find({"projectId": project_id, "state": "visible"},
                                            {"_id": 1}).to_list(None)
            if not visible:
                return Page([], None)
            scope = {"$in": [d["_id"] for d in visible]}
        match: dict[str, Any] = {"projectId": project_id, "chatId": scope}
        words: list[str] = []
        for tokens, prefix in terms:
            words += tokens[:-1] if prefix else tokens
        if words:
            match["$text"] = {"$search": " ".join(f'"{w}"' for w in dict.fromkeys(words))}
        if author is not None:
            match["author"] = author
        if since is not None or until is not None:
            match["time"] = {}
            if since is not None:
                match["time"]["$gte"] = _ms_ceil(since)
            if until is not None:
                match["time"]["$lte"] = _ms_floor(until)
        match["$and"] = [{"fold": {"$regex": _regex(t, p)}} for t, p in terms]
        pipeline: list[dict] = [
            {"$match": match},
            {"$addFields": {"_score": {"$meta": "textScore"} if words else 0.0}}]
        if after is not None:
            score, t, last_id = after[0], EPOCH + after[1] * MS, after[2]
            pipeline.append({"$match": {"$or": [
                {"_score": {"$lt": score}},
                {"_score": score, "time": {"$lt": t}},
                {"_score": score, "time": t, "_id": {"$lt": last_id}}]}})
        take = min(limit, SEARCH_WINDOW - served)
        pipeline += [{"$sort": {"_score": -1, "time": -1, "_id": -1}},
                     {"$limit": take + 1},
                     {"$project": {"chatId": 1, "author": 1, "time": 1, "text": 1,
                                   "_score": 1}}]
        docs = await (await self.lines.aggregate(pipeline)).to_list(None)
        page = docs[:take]
        items = [ChatHit(chat_id=d["chatId"], message_id=d["_id"], author=d["author"],
                         time=d["time"], text=d["text"], snippet=snippet(d["text"], terms),
                         score=float(d["_score"])) for d in page]
        more = len(docs) > take and served + take < SEARCH_WINDOW
        if not more or not items:
            return Page(items, None)
        last = page[-1]
        return Page(items, encode_cursor(["t", float(last["_score"]),
                                          (last["time"] - EPOCH) // MS, last["_id"],
                                          served + take]))

    async def activity(self, chat_id, *, bucket="month") -> list[tuple[str, int]]:
        if bucket not in ("day", "month"):
            raise BadRequest('bucket must be "day" or "month"')
        if await self._visible(chat_id) is None:
            return []
        fmt = "%Y-%m" if bucket == "month" else "%Y-%m-%d"
        cursor = await self.lines.aggregate([
            {"$match": {"chatId": chat_id, "kind": "message"}},
            {"$group": {"_id": {"$dateToString": {"format": fmt, "date": "$time"}},
                        "n": {"$sum": 1}}},
            {"$sort": {"_id": 1}}])
        return [(d["_id"], d["n"]) async for d in cursor]

    # -- changes --------------------------------------------------------------------------

    async def rename_chat(self, chat_id, name) -> ImportedChat | None:
        await self.chats.update_one({"_id": chat_id, "state": "visible"},
                                    {"$set": {"name": name}})
        return await self.get_chat(chat_id)

    async def delete_chat(self, chat_id) -> ImportedChat | None:
        gone = await self._delete({"_id": chat_id}, ("hidden", "visible"))
        return gone[0] if gone else None

    async def delete_file_chats(self, file_id) -> list[str]:
        return [c.id for c in await self._delete({"fileId": file_id}, ("hidden", "visible"))]

    async def delete_project_chats(self, project_id) -> list[str]:
        return [c.id for c in await self._delete({"projectId": project_id},
                                                 ("hidden", "visible"))]
