"""What a handler gets besides its payload: the caller's socket, the instance's services,
and the resource its event's scope resolved (``handlers.scopes``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.config import Settings
from services.container import Services
from services.gateway import Gateway, SocketState
from store.base import Store, User
from store.errors import Unauthorized

if TYPE_CHECKING:
    from handlers.base import EventSpec


class EventContext:
    __slots__ = ("services", "gateway", "sid", "state", "spec", "project_role", "resource")

    def __init__(self, services: Services, sid: str, state: SocketState, spec: EventSpec):
        self.services = services
        self.gateway: Gateway = services.gateway
        self.sid = sid
        self.state = state
        self.spec = spec
        # The caller's role in the project the event's scope resolved, and the resource
        # loaded on the way (a table, a conversation, a capture's file, …).
        self.project_role: str | None = None
        self.resource: Any = None

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def user_id(self) -> str:
        if self.state.user_id is None:
            raise Unauthorized("sign in first")
        return self.state.user_id

    async def authenticate(self, user: User, token_exp: float, session_id: str) -> None:
        await self.gateway.authenticate(self.sid, self.state, user, token_exp, session_id)

    async def push_project(self, project_id: str, event: str, data: dict, *,
                           skip_self: bool = False) -> None:
        await self.gateway.push_project(project_id, event, data,
                                        skip_sid=self.sid if skip_self else None)

    async def push_user(self, user_id: str, event: str, data: dict) -> None:
        await self.gateway.push(event, data, room=f"user:{user_id}")

    async def enter_room(self, room: str) -> None:
        await self.gateway.sio.enter_room(self.sid, room)

    async def leave_room(self, room: str) -> None:
        await self.gateway.sio.leave_room(self.sid, room)
