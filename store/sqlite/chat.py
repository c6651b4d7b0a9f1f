"""Conversations, messages and cached file contexts on SQLite.

The conversation row holds the claim of its generating reply (``generating_id`` +
``lease_until``); every transaction runs whole on the writer thread, so claiming, renewing
and reaping are each one atomic step.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

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
from store.ids import iso, new_id, parse_iso, utcnow
from store.query import encode_cursor, last_seen
from store.sqlite.db import Database


def _conversation(row: sqlite3.Row | None) -> Conversation | None:
    if row is None:
        return None
    return Conversation(id=row["id"], project_id=row["project_id"], owner_id=row["owner_id"],
                        title=row["title"], created_at=parse_iso(row["created_at"]),
                        updated_at=parse_iso(row["updated_at"]),
                        generating_id=row["generating_id"],
                        lease_until=parse_iso(row["lease_until"]))


def _message(row: sqlite3.Row | None) -> ChatMessage | None:
    if row is None:
        return None
    return ChatMessage(id=row["id"], conversation_id=row["conversation_id"], role=row["role"],
                       content=row["content"], status=row["status"], author_id=row["author_id"],
                       attachments=tuple(json.loads(row["attachments"])),
                       metadata=json.loads(row["metadata"]),
                       created_at=parse_iso(row["created_at"]),
                       updated_at=parse_iso(row["updated_at"]), delta_index=row["delta_index"],
                       instance=row["instance"])


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _get_conversation(conn, conversation_id):
    return _conversation(conn.execute("SELECT * FROM conversations WHERE id=?",
                                      (conversation_id,)).fetchone())


def _conversation_for(conn, conversation_id: str, user_id: str):
    row = conn.execute(
        "SELECT c.*, m.role AS member_role FROM conversations c"
        " LEFT JOIN project_members m ON m.project_id=c.project_id AND m.user_id=?"
        " WHERE c.id=?", (user_id, conversation_id)).fetchone()
    return (_conversation(row), row["member_role"]) if row else (None, None)


def _recent_turns(conn, conversation_id: str, chars: int, limit: int) -> tuple:
    keep = RecentTurns(chars, limit)
    cursor = conn.execute("SELECT id, role, status, content FROM chat_messages"
                          " WHERE conversation_id=? ORDER BY id DESC LIMIT ?",
                          (conversation_id, limit))
    try:
        for row in cursor:  # rows are produced as they are read: stop at the budget
            if not keep.add(HistoryTurn(*row)):
                break
    finally:
        cursor.close()
    return keep.oldest_first()


def _get_message(conn, message_id):
    return _message(conn.execute("SELECT * FROM chat_messages WHERE id=?",
                                 (message_id,)).fetchone())


def _fail(conn, message_id: str, error: dict, now: str) -> ChatMessage | None:
    row = conn.execute("SELECT metadata FROM chat_messages WHERE id=? AND status='generating'",
                       (message_id,)).fetchone()
    if row is None:
        return None
    metadata = {**json.loads(row["metadata"]), "error": error}
    conn.execute("UPDATE chat_messages SET status='failed', metadata=?, updated_at=? WHERE id=?",
                 (_dumps(metadata), now, message_id))
    return _get_message(conn, message_id)


class SqliteChat(ChatRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_conversation(self, *, owner_id, project_id, title=None) -> Conversation:
        now = iso(utcnow())
        cid = new_id()

        def tx(conn):
            conn.execute("INSERT INTO conversations (id, project_id, owner_id, title, created_at,"
                         " updated_at) VALUES (?,?,?,?,?,?)",
                         (cid, project_id, owner_id, title, now, now))
            return _get_conversation(conn, cid)

        return await self.db.write(tx)

    async def get_conversation(self, conversation_id) -> Conversation | None:
        return await self.db.read(_get_conversation, conversation_id)

    async def get_conversation_for(self, conversation_id, user_id):
        return await self.db.read(_conversation_for, conversation_id, user_id)

    async def list_readable_conversations(self, project_ids, private_of, *, cursor=None,
                                          limit=50) -> Page[Conversation]:
        ids = list(dict.fromkeys(project_ids))
        parts, args = [], []
        if ids:
            parts.append(f"project_id IN ({','.join('?' * len(ids))})")
            args += ids
        if private_of is not None:
            parts.append("(owner_id=? AND project_id IS NULL)")
            args.append(private_of)
        where = f"({' OR '.join(parts) or '0'})"
        if cursor:
            where += " AND id<?"
            args.append(last_seen(cursor, "c"))

        def read(conn):
            rows = conn.execute(f"SELECT * FROM conversations WHERE {where} ORDER BY id DESC"
                                f" LIMIT ?", (*args, limit + 1)).fetchall()
            items = [_conversation(r) for r in rows[:limit]]
            return Page(items, encode_cursor(["c", items[-1].id]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def set_title(self, conversation_id, title, *, only_if_unset=False):
        def tx(conn):
            sql = "UPDATE conversations SET title=?, updated_at=? WHERE id=?"
            if only_if_unset:
                sql += " AND title IS NULL"
            cur = conn.execute(sql, (title, iso(utcnow()), conversation_id))
            if cur.rowcount == 0:
                if _get_conversation(conn, conversation_id) is None:
                    raise NotFound("conversation not found")
                return None
            return _get_conversation(conn, conversation_id)

        return await self.db.write(tx)

    async def delete_conversation(self, conversation_id) -> bool:
        def tx(conn):
            conn.execute("DELETE FROM chat_messages WHERE conversation_id=?", (conversation_id,))
            return conn.execute("DELETE FROM conversations WHERE id=?",
                                (conversation_id,)).rowcount > 0

        return await self.db.write(tx)

    async def delete_project_chat(self, project_id) -> list[str]:
        def tx(conn):
            ids = [r[0] for r in conn.execute("SELECT id FROM conversations WHERE project_id=?",
                                              (project_id,))]
            conn.execute("DELETE FROM chat_messages WHERE conversation_id IN"
                         " (SELECT id FROM conversations WHERE project_id=?)", (project_id,))
            conn.execute("DELETE FROM conversations WHERE project_id=?", (project_id,))
            conn.execute("DELETE FROM chat_file_context WHERE project_id=?", (project_id,))
            return ids

        return await self.db.write(tx)

    async def start_exchange(self, conversation_id, *, author_id, content, attachments,
                             instance, lease_until, history_chars=0,
                             history_limit=HISTORY_LIMIT, authorize=None) -> Exchange:
        now = iso(utcnow())
        user_id, reply_id = new_id(), new_id()

        def tx(conn):
            if authorize is not None:
                conv, member_role = _conversation_for(conn, conversation_id, author_id)
                authorize(conv, member_role)
            else:
                conv = _get_conversation(conn, conversation_id)
            if conv is None:
                raise NotFound("conversation not found")
            displaced = None
            if conv.generating_id is not None:
                if conv.lease_until is not None and iso(conv.lease_until) > now:
                    raise Conflict("a reply is still being generated in this conversation",
                                   {"messageId": conv.generating_id})
                displaced = _fail(conn, conv.generating_id, {
                    "code": "unavailable", "reason": "instance_lost",
                    "message": "the server generating this reply stopped"}, now)
            history = _recent_turns(conn, conversation_id, history_chars, history_limit) \
                if history_chars > 0 else ()
            insert = ("INSERT INTO chat_messages (id, conversation_id, role, content, status,"
                      " author_id, attachments, metadata, delta_index, instance, created_at,"
                      " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
            conn.execute(insert, (user_id, conversation_id, "user", content, "complete",
                                  author_id, _dumps(list(attachments)), "{}", -1, None, now, now))
            conn.execute(insert, (reply_id, conversation_id, "assistant", "", "generating", None,
                                  "[]", "{}", -1, instance, now, now))
            conn.execute("UPDATE conversations SET generating_id=?, lease_until=?, updated_at=?"
                         " WHERE id=?", (reply_id, iso(lease_until), now, conversation_id))
            at = parse_iso(now)
            return Exchange(
                ChatMessage(user_id, conversation_id, "user", content, "complete", author_id,
                            tuple(attachments), {}, at, at),
                ChatMessage(reply_id, conversation_id, "assistant", "", "generating", None, (),
                            {}, at, at, instance=instance),
                displaced, history,
                replace(conv, generating_id=reply_id, lease_until=parse_iso(iso(lease_until)),
                        updated_at=at))

        return await self.db.write(tx)

    async def get_message(self, message_id) -> ChatMessage | None:
        return await self.db.read(_get_message, message_id)

    async def list_messages(self, conversation_id, *, before=None,
                            limit=50) -> Page[ChatMessage]:
        older_than = last_seen(before, "m") or "~"

        def read(conn):
            rows = conn.execute(
                "SELECT * FROM chat_messages WHERE conversation_id=? AND id<? ORDER BY id DESC"
                " LIMIT ?", (conversation_id, older_than, limit + 1)).fetchall()
            items = [_message(r) for r in reversed(rows[:limit])]
            return Page(items, encode_cursor(["m", items[0].id]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def save_progress(self, message_id, content, delta_index) -> bool:
        return await self.db.write(lambda c: c.execute(
            "UPDATE chat_messages SET content=?, delta_index=?, updated_at=?"
            " WHERE id=? AND status='generating'",
            (content, delta_index, iso(utcnow()), message_id)).rowcount > 0)

    async def finish_reply(self, message_id, *, status, content, metadata,
                           delta_index) -> ChatMessage | None:
        now = iso(utcnow())

        def tx(conn):
            cur = conn.execute(
                "UPDATE chat_messages SET status=?, content=?, metadata=?, delta_index=?,"
                " updated_at=? WHERE id=? AND status='generating'",
                (status, content, _dumps(metadata), delta_index, now, message_id))
            if cur.rowcount == 0:
                return None
            message = _get_message(conn, message_id)
            conn.execute("UPDATE conversations SET generating_id=NULL, lease_until=NULL,"
                         " updated_at=? WHERE id=? AND generating_id=?",
                         (now, message.conversation_id, message_id))
            return message

        return await self.db.write(tx)

    async def renew_claims(self, reply_ids: Sequence[str], lease_until) -> set[str]:
        ids = list(reply_ids)
        if not ids:
            return set()

        def tx(conn):
            marks = ",".join("?" * len(ids))
            conn.execute(f"UPDATE conversations SET lease_until=? WHERE generating_id IN ({marks})",
                         (iso(lease_until), *ids))
            return {r[0] for r in conn.execute(
                f"SELECT generating_id FROM conversations WHERE generating_id IN ({marks})", ids)}

        return await self.db.write(tx)

    async def fail_expired(self, now, error) -> list[ChatMessage]:
        at = iso(now)

        def tx(conn):
            rows = conn.execute("SELECT id, generating_id FROM conversations WHERE generating_id"
                                " IS NOT NULL AND lease_until < ?", (at,)).fetchall()
            failed = []
            for row in rows:
                conn.execute("UPDATE conversations SET generating_id=NULL, lease_until=NULL"
                             " WHERE id=?", (row["id"],))
                message = _fail(conn, row["generating_id"], error, at)
                if message is not None:
                    failed.append(message)
            return failed

        return await self.db.write(tx)

    async def get_file_context(self, file_id, sha256) -> dict | None:
        row = await self.db.read(lambda c: c.execute(
            "SELECT data FROM chat_file_context WHERE file_id=? AND sha256=?",
            (file_id, sha256)).fetchone())
        return None if row is None else json.loads(row["data"])

    async def put_file_context(self, *, file_id, project_id, sha256, kind, data) -> None:
        await self.db.write(lambda c: c.execute(
            "INSERT OR REPLACE INTO chat_file_context (file_id, project_id, sha256, kind, data,"
            " created_at) VALUES (?,?,?,?,?,?)",
            (file_id, project_id, sha256, kind, _dumps(data), iso(utcnow()))))

    async def count_conversations(self) -> int:
        return await self.db.read(
            lambda c: c.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    async def count_messages(self) -> int:
        return await self.db.read(
            lambda c: c.execute("SELECT COUNT(*) FROM chat_messages").fetchone()[0])
