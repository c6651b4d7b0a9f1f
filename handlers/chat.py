"""conversation:* and message:* — AI chat (the seeds' "sessions").

A conversation lives in a project (its members read it, editors write to it, the project's
owners and the conversation's creator may delete it) or is private (its owner's alone). A
stranger gets ``not_found`` either way. ``message:send`` stores the user's message and
answers at once; the reply streams to ``conversation:<id>`` from ``chat_replies``. One reply
generates per conversation at a time, cluster-wide: the store claims the conversation
atomically (``conflict`` otherwise).
"""
from __future__ import annotations

from functools import partial

from pydantic import Field, StrictBool, field_validator, model_validator

from handlers import scopes
from handlers.base import Cursor, Int, Payload, event
from handlers.files import file_for
from services.quotas import spend_guest_quota
from services.replies import (
    ReplyEngine,
    audience,
    conversation_view,
    message_view,
    push_conversation,
    room,
)
from store import base as model
from store.base import Conversation, FileRecord, role_at_least
from store.errors import BadRequest, Conflict, Forbidden, NotFound

Id = Field(min_length=1, max_length=64)
MAX_ATTACHMENTS = 20
MAX_CHATS = 5
MAX_PROJECT_FILES = 50
MAX_CONTENT = 32_000


class CreatePayload(Payload):
    projectId: str | None = Field(default=None, min_length=1, max_length=64)
    title: str | None = Field(default=None, max_length=200)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("title cannot be blank")
        return value.strip() if value is not None else None


class ListPayload(Payload):
    projectId: str | None = Field(default=None, min_length=1, max_length=64)
    all: StrictBool = False
    cursor: str | None = Cursor
    limit: int = Int(50, ge=1, le=200)

    @model_validator(mode="after")
    def _one_scope(self) -> ListPayload:
        if self.all and self.projectId is not None:
            raise ValueError("all lists every conversation you can read: omit projectId")
        return self


class GetPayload(Payload):
    id: str = Id
    cursor: str | None = Cursor
    limit: int = Int(50, ge=1, le=200)


class IdPayload(Payload):
    id: str = Id


class RenamePayload(Payload):
    id: str = Id
    title: str = Field(min_length=1, max_length=200)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title cannot be blank")
        return value.strip()


class SendPayload(Payload):
    conversationId: str = Id
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    attachments: list[str] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    includeProjectFiles: bool = False
    chats: list[str] = Field(default_factory=list, max_length=MAX_CHATS)

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty")
        return value


class CancelPayload(Payload):
    messageId: str = Id


# -- access -------------------------------------------------------------------------------

# A plain message is authorized by the exchange's own write (``start_exchange(authorize=)``)
# with this scope's rule: one store round trip fewer before the provider's request.
SEND = scopes.Conversation("conversationId", "editor", in_write=True)


def engine(ctx) -> ReplyEngine:
    return ctx.services.chat


async def _attachments(ctx, conv: Conversation, p: SendPayload) -> tuple[list[FileRecord],
                                                                         list[dict]]:
    files: list[FileRecord] = []
    for file_id in dict.fromkeys(p.attachments):
        record = await file_for(ctx.services, file_id, ctx.user_id, "viewer")
        if conv.project_id is not None and record.project_id != conv.project_id:
            raise NotFound("file not found", {"fileId": file_id})
        files.append(record)
    omitted: list[dict] = []
    if p.includeProjectFiles:
        if conv.project_id is None:
            raise BadRequest("includeProjectFiles needs a conversation in a project")
        seen, cursor = {f.id for f in files}, None
        while True:
            page = await ctx.store.files.list_files(conv.project_id, cursor=cursor, limit=200)
            for record in page.items:
                if record.id in seen:
                    continue
                if len(files) < MAX_ATTACHMENTS + MAX_PROJECT_FILES:
                    files.append(record)
                else:
                    omitted.append({"fileId": record.id, "name": record.name,
                                    "reason": "too_many"})
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return files, omitted


async def _chats(ctx, conv: Conversation, p: SendPayload) -> list[model.ImportedChat]:
    """The imported chats the reply is grounded in: the caller's to read, in the
    conversation's project."""
    if p.chats and conv.project_id is None:
        raise BadRequest("imported chats can ground replies in a project's conversation only")
    chats = []
    for chat_id in dict.fromkeys(p.chats):
        chat, _ = await scopes.ImportedChat("id", "viewer").load(ctx.store, ctx.user_id, chat_id)
        if chat.project_id != conv.project_id:
            raise NotFound("chat not found", {"chatId": chat_id})
        chats.append(chat)
    return chats


# -- conversations ------------------------------------------------------------------------

@event("conversation:create", CreatePayload, scope=scopes.ProjectOrPrivate("projectId", "editor"),
       ack="conversation",
       emits=("conversation:created",))
async def on_create(ctx, p: CreatePayload):
    """Start a conversation in a project (editors) or a private one (no projectId). Without
    a title it gets one from its first exchange."""
    conv = await ctx.store.chat.create_conversation(owner_id=ctx.user_id,
                                                    project_id=p.projectId, title=p.title)
    await ctx.services.delivery.push(
        "conversation:created", {"conversationId": conv.id, "projectId": conv.project_id,
                                 "conversation": conversation_view(conv)},
        to=audience(conv)[1], skip_sid=ctx.sid)
    return conversation_view(conv)


@event("conversation:list", ListPayload,
       scope=scopes.ProjectOrPrivate("projectId", "viewer",
                                     otherwise="own private (all: every readable one)"),
       ack="{items: [conversation], nextCursor}")
async def on_list(ctx, p: ListPayload):
    """A project's conversations (its members), or without projectId your private ones, or
    with ``all`` every conversation you can read (your projects' and your private ones);
    newest first, paged."""
    if p.all:
        projects = [pr.id for pr in await ctx.store.projects.list_projects_for_user(ctx.user_id)]
        page = await ctx.store.chat.list_readable_conversations(
            projects, ctx.user_id, cursor=p.cursor, limit=p.limit)
    else:
        page = await ctx.store.chat.list_conversations(
            project_id=p.projectId, owner_id=ctx.user_id, cursor=p.cursor, limit=p.limit)
    return {"items": [conversation_view(c) for c in page.items], "nextCursor": page.next_cursor}


@event("conversation:get", GetPayload, scope=scopes.Conversation("id", "viewer"),
       ack="{conversation, messages: [message], nextCursor}")
async def on_get(ctx, p: GetPayload):
    """A conversation and its messages, newest last; ``nextCursor`` pages to older ones. A
    reply still generating carries its text so far and ``deltaIndex``."""
    conv = ctx.resource
    page = await ctx.store.chat.list_messages(conv.id, before=p.cursor, limit=p.limit)
    messages = [message_view(m) for m in page.items]
    live = engine(ctx).snapshot(conv.id)
    for view in messages:
        if live and view["id"] == live["messageId"]:
            view.update(content=live["content"], deltaIndex=live["index"])
    return {"conversation": conversation_view(conv), "messages": messages,
            "nextCursor": page.next_cursor}


@event("conversation:rename", RenamePayload, scope=scopes.Conversation("id", "editor"),
       ack="conversation",
       emits=("conversation:updated",))
async def on_rename(ctx, p: RenamePayload):
    """Retitle a conversation (project editors; a private one's owner)."""
    conv = await ctx.store.chat.set_title(ctx.resource.id, p.title)
    await push_conversation(ctx.services.delivery, "conversation:updated", conv)
    return conversation_view(conv)


@event("conversation:delete", IdPayload, scope=scopes.Conversation("id", "editor"),
       ack="{id}", emits=("conversation:deleted",))
async def on_delete(ctx, p: IdPayload):
    """Delete a conversation and its messages (its creator if still an editor, or a project
    owner; a private one's owner). A reply generating in it stops."""
    conv = ctx.resource
    if conv.owner_id != ctx.user_id and not role_at_least(ctx.project_role, "owner"):
        raise Forbidden("only the conversation's creator or a project owner deletes it")
    await ctx.store.chat.delete_conversation(conv.id)
    await push_conversation(ctx.services.delivery, "conversation:deleted", conv, {"id": conv.id})
    await ctx.services.bus.publish("chat:closed", {"conversationIds": [conv.id]})
    return {"id": conv.id}


@event("conversation:join", IdPayload, scope=scopes.Conversation("id", "viewer"),
       ack="{conversation, generating, room, seq, epoch}",
       emits=("message:started", "message:delta", "message:done", "message:error"))
async def on_join(ctx, p: IdPayload):
    """Receive the conversation's stream (room ``conversation:<id>``). ``generating`` is the
    reply in progress, if any: its text so far and the index of the last delta in it."""
    conv = ctx.resource
    await ctx.enter_room(room(conv.id))
    engine(ctx).joined.setdefault(ctx.sid, {})[conv.id] = conv.project_id
    head = (await ctx.services.delivery.head(room(conv.id))).view(room(conv.id))
    generating = None
    if conv.generating_id:
        generating = engine(ctx).snapshot(conv.id)
        if generating is None:
            message = await ctx.store.chat.get_message(conv.generating_id)
            if message is not None and message.status == "generating":
                generating = {"messageId": message.id, "content": message.content,
                              "index": message.delta_index}
    return {"conversation": conversation_view(conv), "generating": generating, **head}


@event("conversation:leave", IdPayload, ack="{id}")
async def on_leave(ctx, p: IdPayload):
    """Stop receiving the conversation's stream."""
    await ctx.leave_room(room(p.id))
    engine(ctx).joined.get(ctx.sid, {}).pop(p.id, None)
    return {"id": p.id}


# -- messages -----------------------------------------------------------------------------

@event("message:send", SendPayload, scope=SEND, ack="{message, replyId, reply}",
       emits=("message:started", "message:delta", "message:done", "message:error",
              "conversation:updated", "auth:quota"))
async def on_send(ctx, p: SendPayload):
    """Send a message (project editors; a private conversation's owner), optionally with
    attached files, all the project's files, or imported ``chats`` (their participants,
    activity and the messages closest to the question) as context. The ack holds the
    stored message and the reply's id; the reply streams to the conversation's room.
    ``conflict`` while a reply is generating; guests spend one of ``remainingMessages``
    (``forbidden`` with reason ``guest_limit`` at zero)."""
    files: list[FileRecord] = []
    omitted: list[dict] = []
    remaining = None
    chats: list[model.ImportedChat] = []
    if p.attachments or p.includeProjectFiles or p.chats or ctx.state.is_guest:
        # Files are checked against the conversation's project, and a guest's message is
        # spent only once it may be sent: these need the conversation first. A plain
        # message is authorized by the write itself, one store round trip sooner.
        conv, ctx.project_role = await SEND.load(ctx.store, ctx.user_id, p.conversationId)
        if conv.generating_id and conv.lease_until and conv.lease_until > ctx.services.clock.now():
            raise Conflict("a reply is still being generated in this conversation",
                           {"messageId": conv.generating_id})
        files, omitted = await _attachments(ctx, conv, p)
        chats = await _chats(ctx, conv, p)
        if ctx.state.is_guest:
            remaining = await spend_guest_quota(ctx.store, ctx.gateway, ctx.user_id,
                                                "remaining_messages")
    chat = engine(ctx)
    plain = not (files or chats or ctx.state.is_guest)
    async with chat.early(p.conversationId, ctx.user_id, p.content, plain) as early:
        exchange = await ctx.store.chat.start_exchange(
            p.conversationId, author_id=ctx.user_id, content=p.content,
            attachments=[f.id for f in files if f.id in p.attachments],
            instance=ctx.settings.instance_id, lease_until=chat.lease_until(),
            history_chars=chat.history_chars,
            authorize=partial(SEND.check, user_id=ctx.user_id))
        if exchange.displaced is not None:
            await chat.report_failed(exchange.displaced)
        chat.begin(exchange.conversation, exchange, files, omitted, chats, early)
    out = {"message": message_view(exchange.user), "replyId": exchange.reply.id,
           "reply": message_view(exchange.reply)}
    if remaining is not None and remaining >= 0:
        out["remainingMessages"] = remaining
    return out


@event("message:cancel", CancelPayload, scope=scopes.Message("messageId", "editor"),
       ack="{messageId, cancelling}",
       emits=("message:done",))
async def on_cancel(ctx, p: CancelPayload):
    """Stop a reply that is generating (those who may send in the conversation). What was
    streamed is kept; ``message:done`` follows with status ``cancelled``."""
    message = ctx.resource
    if message.status != "generating":
        raise Conflict(f"this reply is not generating (it is {message.status})",
                       {"status": message.status})
    if not engine(ctx).cancel_local(message.id):
        await ctx.services.bus.publish("chat:cancel", {"messageId": message.id})
    return {"messageId": message.id, "cancelling": True}


EVENTS = [on_create, on_list, on_get, on_rename, on_delete, on_join, on_leave, on_send,
          on_cancel]
