"""Resource scopes: what an event acts on and the project role it needs there, declared on
the event (``@event(..., scope=Table("tableId", "editor"))``).

The dispatcher resolves the scope before the handler runs: it loads the resource named by
the payload field, finds its project, checks the caller's role in it and hands both to the
handler (``ctx.resource``, ``ctx.project_role``). REST resolves through the same ``load``.
So the catalogue's "who may call" column is the truth, and the authorization matrix test
(tests/integration/test_authorization_matrix.py) checks every event against it.

A resource the caller may not see answers ``not_found`` with the resource's own name (ids
reveal nothing); a visible one with too low a role answers ``forbidden``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from handlers.base import project_access
from store import base as model
from store.base import Store
from store.errors import Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from handlers.context import EventContext

Role = Literal["viewer", "editor", "owner"]


@dataclass(frozen=True)
class Scope:
    field: str
    role: Role
    kind: ClassVar[str] = "project"
    # The handler authorizes with this scope's rule inside its own store write (one round
    # trip fewer on a hot path); the dispatcher then loads nothing.
    in_write: bool = False

    @property
    def access(self) -> str:
        return f"{self.kind} {self.role}"

    async def resolve(self, ctx: EventContext, ident: Any) -> tuple[Any, str | None]:
        return await self.load(ctx.store, ctx.user_id, ident)

    async def load(self, store: Store, user_id: str, ident: Any) -> tuple[Any, str | None]:
        """(the resource, the caller's role in its project); raises if not allowed."""
        raise NotImplementedError

    async def _in_project(self, store: Store, user_id: str, project_id: str) -> str:
        role = await store.projects.get_member_role(project_id, user_id)
        try:
            return project_access(role, self.role)
        except NotFound:
            raise NotFound(f"{self.kind} not found") from None


@dataclass(frozen=True)
class Project(Scope):
    """The project whose id is the field; the resource is the id."""

    async def load(self, store, user_id, ident):
        return ident, await self._in_project(store, user_id, ident)


@dataclass(frozen=True)
class ProjectOrPrivate(Project):
    """A project (needing ``role``) when the field is set, else the caller's own space."""

    otherwise: str = "own private"  # what the event reaches without the field

    @property
    def access(self) -> str:
        return f"project {self.role}, or {self.otherwise}"

    async def load(self, store, user_id, ident):
        if ident is None:
            return None, None
        return await super().load(store, user_id, ident)


@dataclass(frozen=True)
class InRoom(Scope):
    """A project whose room this socket has joined (``project:join`` checked the role):
    no store read on the ephemeral relay path."""

    role: Role = "viewer"

    @property
    def access(self) -> str:
        return "project room member"

    async def resolve(self, ctx, ident):
        if not ctx.gateway.in_room(ctx.sid, f"project:{ident}"):
            raise Forbidden("join the project before broadcasting to it")
        return ident, None


@dataclass(frozen=True)
class Table(Scope):
    kind: ClassVar[str] = "table"

    async def load(self, store, user_id, ident) -> tuple[model.Table, str]:
        table = await store.tables.get_table(ident)
        if table is None:
            raise NotFound(f"{self.kind} not found")
        return table, await self._in_project(store, user_id, table.project_id)


@dataclass(frozen=True)
class ImportedChat(Scope):
    """A chat imported from another platform (``chat:*``)."""

    kind: ClassVar[str] = "chat"

    async def load(self, store, user_id, ident) -> tuple[model.ImportedChat, str]:
        chat = await store.chats.get_chat(ident)
        if chat is None:
            raise NotFound(f"{self.kind} not found")
        return chat, await self._in_project(store, user_id, chat.project_id)


@dataclass(frozen=True)
class _FileBased(Scope):
    """A scope whose resource is found through an uploaded file."""

    async def _file(self, store, user_id, ident) -> tuple[model.FileRecord, str]:
        record = await store.files.get_file(ident)
        if record is None:
            raise NotFound(f"{self.kind} not found")
        return record, await self._in_project(store, user_id, record.project_id)


@dataclass(frozen=True)
class File(_FileBased):
    kind: ClassVar[str] = "file"

    async def load(self, store, user_id, ident) -> tuple[model.FileRecord, str]:
        return await self._file(store, user_id, ident)


@dataclass(frozen=True)
class CaptureRef:
    file: model.FileRecord
    job: model.Job


@dataclass(frozen=True)
class Capture(_FileBased):
    """An uploaded file with a capture ingest job; with ``done`` the ingest must have
    finished (``conflict`` otherwise, carrying its state)."""

    kind: ClassVar[str] = "capture"
    done: bool = True

    async def load(self, store, user_id, ident) -> tuple[CaptureRef, str]:
        record, role = await self._file(store, user_id, ident)
        job = await store.pcap.get_job(record.id)
        if job is None:
            raise NotFound("this file has not been ingested as a capture", {"fileId": ident})
        if self.done and job.state != "done":
            message = {"queued": "the capture is queued for ingest",
                       "running": "the capture is still being ingested",
                       "failed": "the capture could not be ingested",
                       "cancelled": "the capture's ingest was cancelled"}[job.state]
            raise Conflict(message, {"state": job.state, "progress": job.progress,
                                     "error": job.error})
        return CaptureRef(record, job), role


@dataclass(frozen=True)
class Conversation(Scope):
    kind: ClassVar[str] = "conversation"

    @property
    def access(self) -> str:
        return f"{self.kind}: project {self.role}, or owner if private"

    def check(self, conv: model.Conversation | None, member_role: str | None,
              user_id: str) -> str:
        """The caller's role on ``conv`` (given their role in its project) if it includes
        the scope's: a private conversation is its owner's alone. (Also run inside
        ``message:send``'s store write.)"""
        if conv is None:
            raise NotFound("conversation not found")
        if conv.project_id is None:
            if conv.owner_id != user_id:
                raise NotFound("conversation not found")
            return "owner"
        try:
            return project_access(member_role, self.role)
        except NotFound:
            raise NotFound("conversation not found") from None

    async def load(self, store, user_id, ident) -> tuple[model.Conversation, str]:
        conv, member = await store.chat.get_conversation_for(ident, user_id)
        return conv, self.check(conv, member, user_id)


@dataclass(frozen=True)
class Message(Conversation):
    """A chat message, authorized through its conversation."""

    kind: ClassVar[str] = "message"

    async def load(self, store, user_id, ident):
        message = await store.chat.get_message(ident)
        if message is None:
            raise NotFound("message not found")
        try:
            _, role = await super().load(store, user_id, message.conversation_id)
        except NotFound:
            raise NotFound("message not found") from None
        return message, role

