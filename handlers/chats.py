"""chat:* — chat histories imported from other platforms (WhatsApp, Telegram, Discord,
Slack, ChatGPT, Messenger/Instagram): import jobs, browsing, search, rename, delete.

Pushes to the project room: ``chat:import:queued {fileId, position}``,
``chat:import:progress {fileId, messages, percent, rate, etaSeconds}`` (at most ~4/s),
``chat:imported {fileId, chats}``, ``chat:import:failed {fileId, code, reason, message,
details?}``, ``chat:import:cancelled {fileId}``, ``chat:updated {chat}``,
``chat:deleted {id}``. Exports are REST: ``GET /api/chats/{id}/export.{json,csv,md,txt}``.
"""
from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from handlers.base import Cursor, Int, Payload, Time, event
from handlers.scopes import File, ImportedChat, Project
from ingest.chats.model import PLATFORMS
from services.chat_imports import chat_view, line_view
from services.quotas import spend_guest_quota
from store.errors import BadRequest, Conflict, NotFound
from store.ids import iso

Id = Field(min_length=1, max_length=64)
Platform = Literal["whatsapp", "telegram", "discord", "slack", "chatgpt", "messenger"]
assert set(Platform.__args__) == set(PLATFORMS)  # type: ignore[attr-defined]


class ImportPayload(Payload):
    projectId: str = Id
    fileId: str = Id
    platform: Platform | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                                 "Europe/Berlin)") from None
        return value


class FilePayload(Payload):
    fileId: str = Id


class ListPayload(Payload):
    projectId: str = Id
    cursor: str | None = Cursor
    limit: int = Int(50, ge=1, le=200)


class IdPayload(Payload):
    id: str = Id


class MessagesPayload(Payload):
    chatId: str = Id
    cursor: str | None = Cursor
    limit: int = Int(100, ge=1, le=500)
    author: str | None = Field(default=None, min_length=1, max_length=200)
    from_: Time | None = Field(default=None, alias="from")
    to: Time | None = None
    around: str | None = Field(default=None, min_length=1, max_length=100)


class RenamePayload(Payload):
    id: str = Id
    name: str = Field(min_length=1, max_length=200)


class SearchPayload(Payload):
    projectId: str = Id
    query: str = Field(min_length=1, max_length=500)
    chatId: str | None = Field(default=None, min_length=1, max_length=64)
    author: str | None = Field(default=None, min_length=1, max_length=200)
    from_: Time | None = Field(default=None, alias="from")
    to: Time | None = None
    cursor: str | None = Cursor
    limit: int = Int(20, ge=1, le=100)


# -- imports ------------------------------------------------------------------------------

@event("chat:import", ImportPayload, scope=File("fileId", "editor"),
       ack="job {fileId, state, progress, position, ...}",
       emits=("chat:import:queued", "chat:import:progress", "chat:imported",
              "chat:import:failed", "auth:quota"))
async def on_import(ctx, p: ImportPayload):
    """Import an uploaded chat export (editors): the platform is detected from the file
    (``platform`` forces one); WhatsApp times are read in ``timezone`` (default UTC).
    Progress and the result reach the project room. Spends one of a guest's imports
    (``forbidden`` with reason ``guest_limit`` at zero)."""
    record = ctx.resource
    if record.project_id != p.projectId:
        raise NotFound("file not found")
    current = await ctx.store.chat_imports.get_job(record.id)
    if current is not None and current.state in ("queued", "running"):
        raise Conflict("this file is already being imported", {"state": current.state})
    if ctx.state.is_guest:
        await spend_guest_quota(ctx.store, ctx.gateway, ctx.user_id, "remaining_imports")
    return await ctx.services.imports.enqueue(
        record.id, record.project_id, ctx.user_id,
        {"platform": p.platform, "timezone": p.timezone or "UTC"})


@event("chat:import:cancel", FilePayload, scope=File("fileId", "editor"),
       ack="{fileId, state}", emits=("chat:import:cancelled",))
async def on_import_cancel(ctx, p: FilePayload):
    """Stop a queued or running import; nothing of it is kept (editors)."""
    job = await ctx.store.chat_imports.cancel_job(ctx.resource.id)
    if job is None:
        current = await ctx.store.chat_imports.get_job(ctx.resource.id)
        raise Conflict("no import of this file is queued or running",
                       {"state": current.state if current else None})
    await ctx.services.imports.cancel(job)
    return {"fileId": job.file_id, "state": "cancelled"}


@event("chat:import:status", FilePayload, scope=File("fileId", "viewer"),
       ack="job {fileId, state, progress, position, owner, ...} or null")
async def on_import_status(ctx, p: FilePayload):
    """The file's import job as it is now (e.g. after a reconnect); null if never imported."""
    return await ctx.services.imports.view(ctx.resource.id)


# -- browsing -----------------------------------------------------------------------------

@event("chat:list", ListPayload, scope=Project("projectId", "viewer"),
       ack="{items: [chat], nextCursor}")
async def on_list(ctx, p: ListPayload):
    """The project's imported chats, newest first, paged."""
    page = await ctx.store.chats.list_chats(p.projectId, cursor=p.cursor, limit=p.limit)
    return {"items": [chat_view(c) for c in page.items], "nextCursor": page.next_cursor}


@event("chat:get", IdPayload, scope=ImportedChat("id", "viewer"), ack="chat")
async def on_get(ctx, p: IdPayload):
    """One imported chat: participants with their message counts, first and last time."""
    return chat_view(ctx.resource)


@event("chat:messages", MessagesPayload, scope=ImportedChat("chatId", "viewer"),
       ack="{items: [message], nextCursor}")
async def on_messages(ctx, p: MessagesPayload):
    """Messages oldest first, keyset-paged (``limit`` ≤ 500), filtered by author and time;
    ``around`` (a message id) opens the page around that message."""
    page = await ctx.store.chats.list_lines(
        ctx.resource.id, cursor=p.cursor, limit=p.limit, author=p.author,
        since=p.from_, until=p.to, around=p.around)
    return {"items": [line_view(m) for m in page.items], "nextCursor": page.next_cursor}


@event("chat:rename", RenamePayload, scope=ImportedChat("id", "editor"), ack="chat",
       emits=("chat:updated",))
async def on_rename(ctx, p: RenamePayload):
    """Rename an imported chat (editors)."""
    chat = await ctx.store.chats.rename_chat(ctx.resource.id, p.name.strip() or p.name)
    if chat is None:
        raise NotFound("chat not found")
    view = chat_view(chat)
    await ctx.push_project(chat.project_id, "chat:updated", {"chat": view}, skip_self=True)
    return view


@event("chat:delete", IdPayload, scope=ImportedChat("id", "editor"), ack="{id}",
       emits=("chat:deleted",))
async def on_delete(ctx, p: IdPayload):
    """Delete an imported chat and its messages (editors)."""
    chat = await ctx.store.chats.delete_chat(ctx.resource.id)
    if chat is None:
        raise NotFound("chat not found")
    await ctx.push_project(chat.project_id, "chat:deleted", {"id": chat.id}, skip_self=True)
    return {"id": chat.id}


@event("chat:search", SearchPayload, scope=Project("projectId", "viewer"),
       ack="{items: [{chatId, messageId, author, time, text, snippet}], nextCursor}")
async def on_search(ctx, p: SearchPayload):
    """Full-text search over the project's imported chats: words, "phrases", prefix*,
    case- and diacritics-insensitive; ranked by relevance then time; the snippet marks
    each hit with « »."""
    if not p.query.strip():
        raise BadRequest("query is empty")
    page = await ctx.store.chats.search(
        p.projectId, p.query, chat_id=p.chatId, author=p.author, since=p.from_,
        until=p.to, cursor=p.cursor, limit=p.limit)
    return {"items": [{"chatId": h.chat_id, "messageId": h.message_id, "author": h.author,
                       "time": iso(h.time), "text": h.text,
                       "snippet": h.snippet} for h in page.items],
            "nextCursor": page.next_cursor}


EVENTS = [on_import, on_import_cancel, on_import_status, on_list, on_get, on_messages,
          on_rename, on_delete, on_search]
