"""What one instance holds while it runs, handed to handlers through the event context.

``Core`` is the instance's resources (opened by the app factory's cleanup contexts);
``Services`` adds the domain engines built on them. Both are frozen and typed: built once,
when every resource is open, and never filled in afterwards. Nothing here is a module global.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from services.bus import Bus
from services.clock import Clock
from services.config import Settings
from services.crypto import SecretBox
from services.gateway import Gateway
from services.idempotency import Requests
from services.presence import Presence
from services.ratelimit import Counter, EventLimiter
from services.replay import Delivery
from services.security import PasswordHasher, TokenService
from services.sessions import Sessions
from services.signin import SignInGuard
from store.base import FileRecord, Store
from store.blobs import BlobStore

if TYPE_CHECKING:  # the engines import this module for Core
    from redis.asyncio import Redis

    from services.accounts import Housekeeping
    from services.captures import PcapService
    from services.chat_imports import ChatImportService
    from services.instances import InstanceRegistry
    from services.locks import LockService
    from services.replies import ReplyEngine
    from services.ticker import Ticker

ProjectHook = Callable[[str], Awaitable[None]]
FileHook = Callable[[FileRecord], Awaitable[None]]
SocketHook = Callable[[str, str], Awaitable[None]]  # (sid, user_id)


@dataclass
class Hooks:
    """Extension points domains register into (e.g. tables delete their rows when a project
    is deleted, locks are released when a socket goes)."""

    project_deleted: list[ProjectHook] = field(default_factory=list)
    file_added: list[FileHook] = field(default_factory=list)
    # Called with the FileRecord after ``file:delete`` removed it (captures drop their data).
    file_deleted: list[FileHook] = field(default_factory=list)
    socket_disconnected: list[SocketHook] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Core:
    """The instance's resources, open for as long as the app runs."""

    settings: Settings
    clock: Clock
    tokens: TokenService
    hasher: PasswordHasher
    secrets: SecretBox
    store: Store
    blobs: BlobStore
    bus: Bus
    presence: Presence
    counter: Counter
    event_limits: EventLimiter  # per-user event budgets (server.realtime's dispatcher)
    sessions: Sessions
    signin: SignInGuard
    gateway: Gateway
    delivery: Delivery  # every room push goes out through it (numbered, kept)
    requests: Requests  # the acks of calls made with a requestId (safe retries)
    hooks: Hooks
    redis: Redis | None = None  # set when REDIS_URL is


@dataclass(frozen=True, kw_only=True)
class Services(Core):
    """``Core`` plus the domain engines (each started and stopped by its own cleanup ctx)."""

    locks: LockService
    ticker: Ticker
    pcap: PcapService
    chat: ReplyEngine
    imports: ChatImportService
    housekeeping: Housekeeping
    instances: InstanceRegistry

    @classmethod
    def with_engines(cls, core: Core, *, locks: LockService, ticker: Ticker, pcap: PcapService,
                     chat: ReplyEngine, imports: ChatImportService, housekeeping: Housekeeping,
                     instances: InstanceRegistry) -> Services:
        base: dict[str, Any] = {f.name: getattr(core, f.name) for f in fields(Core)}
        return cls(**base, locks=locks, ticker=ticker, pcap=pcap, chat=chat, imports=imports,
                   housekeeping=housekeeping, instances=instances)
