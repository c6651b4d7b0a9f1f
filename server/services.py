"""What one instance holds while it runs, handed to handlers through the event context.

Built and torn down by the app factory's cleanup contexts; nothing here is a module global.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from server.bus import Bus
from server.config import Settings
from server.presence import Presence
from server.security import PasswordHasher, TokenService
from store.base import Store

ProjectHook = Callable[[str], Awaitable[None]]
SocketHook = Callable[[str, str], Awaitable[None]]  # (sid, user_id)


@dataclass
class Hooks:
    """Extension points later domains register into (e.g. tables delete their rows when
    a project is deleted, locks are released when a socket goes)."""

    project_deleted: list[ProjectHook] = field(default_factory=list)
    file_added: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # Called with the FileRecord after ``file:delete`` removed it (captures drop their data).
    file_deleted: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # Background work of a domain (workers, leader loops): started once every resource is
    # open, stopped in reverse order before they close.
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    socket_disconnected: list[SocketHook] = field(default_factory=list)


@dataclass
class Services:
    """Filled in by the app's cleanup contexts as each resource opens (``server/app.py``)."""

    settings: Settings
    tokens: TokenService
    hasher: PasswordHasher
    store: Store = None  # type: ignore[assignment]
    presence: Presence = None  # type: ignore[assignment]
    counter: Any = None  # server.ratelimit.MemoryCounter | RedisCounter
    bus: Bus = None  # type: ignore[assignment]
    redis: Any = None  # redis.asyncio.Redis when REDIS_URL is set
    blobs: Any = None  # store.blobs.BlobStore
    locks: Any = None  # server.locks.LockService
    secrets: Any = None  # server.crypto.SecretBox
    ticker: Any = None  # server.ticker.Ticker
    pcap: Any = None  # handlers.pcap_jobs.PcapService, set by handlers.pcap.install
    chat: Any = None  # handlers.chat_replies.ReplyEngine
    hooks: Hooks = field(default_factory=Hooks)
    realtime: Any = None  # server.realtime.Realtime, set once the Socket.IO server exists
