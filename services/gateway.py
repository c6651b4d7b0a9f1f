"""What the services (and handlers) need from the Socket.IO side of an instance.

``server.realtime.Realtime`` implements ``Gateway``; services depend on this protocol, not on
the server, so imports run one way (server → handlers → services → store). The emit helpers
below only need python-socketio's server object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import socketio

from services.clock import Timer
from services.ratelimit import TokenBucket
from services.replay import Entry
from store.base import User


@dataclass(eq=False, slots=True)
class SocketState:
    """One connected socket: who is signed in on it and which project rooms it is in.
    Slotted: a server holds thousands (no per-instance dict; new state is a new field)."""

    sid: str
    ip: str
    user_id: str | None = None
    username: str = ""
    role: str = "user"
    is_guest: bool = False
    token_exp: float = 0.0
    session_id: str | None = None  # the sign-in (refresh-token family) of its token
    projects: set[str] = field(default_factory=set)
    bucket: TokenBucket | None = None
    expiry: Timer | None = None

    def public_user(self) -> dict:
        return {"userId": self.user_id, "username": self.username, "isGuest": self.is_guest}


class Gateway(Protocol):
    sio: socketio.AsyncServer
    sockets: dict[str, SocketState]

    async def push(self, event: str, data: Any, *, room: str | list[str],
                   skip_sid: str | None = None) -> None: ...

    async def push_project(self, project_id: str, event: str, data: dict, *,
                           skip_sid: str | None = None) -> None: ...

    async def authenticate(self, sid: str, state: SocketState, user: User,
                           token_exp: float, session_id: str) -> None: ...

    async def sign_out(self, sid: str, state: SocketState) -> None: ...

    async def join_project(self, sid: str, state: SocketState, project_id: str,
                           role: str) -> None: ...

    async def leave_project(self, sid: str, state: SocketState, project_id: str) -> None: ...

    async def set_visibility(self, sid: str, project_id: str, role: str) -> None: ...

    def in_room(self, sid: str, room: str) -> bool: ...

    async def replay(self, sid: str, entries: list[Entry], clear: bool,
                     user_id: str) -> int | None: ...

    def local_sockets_of(self, user_id: str) -> list[SocketState]: ...
