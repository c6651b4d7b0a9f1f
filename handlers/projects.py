"""project:* — projects, members, rooms with presence, and the ephemeral broadcast path.

Roles: viewers read, editors write content, owners change the project and its members.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, JsonValue, field_validator

from handlers.base import Empty, Payload, event, json_size
from handlers.scopes import InRoom, Project
from handlers.views import project_view
from services import accounts
from services.ratelimit import TokenBucket
from store.errors import Conflict, EventError, Forbidden, NotFound, RateLimited

COLOR = re.compile(r"^(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}|[a-z]{3,20})$")
Role = Literal["owner", "editor", "viewer"]
Id = Field(min_length=1, max_length=64)


class ProjectFields(Payload):
    description: str | None = Field(default=None, max_length=2000)
    color: str | None = None

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR.match(value):
            raise ValueError("a colour name (e.g. 'blue') or #rgb / #rrggbb")
        return value


class CreatePayload(ProjectFields):
    name: str = Field(min_length=1, max_length=100)


class UpdatePayload(ProjectFields):
    id: str = Id
    name: str | None = Field(default=None, min_length=1, max_length=100)


class IdPayload(Payload):
    id: str = Id


class MemberAddPayload(Payload):
    id: str = Id
    email: str = Field(min_length=3, max_length=254)
    role: Role = "editor"


class MemberRemovePayload(Payload):
    id: str = Id
    userId: str = Id


class BroadcastPayload(Payload):
    id: str = Id
    event: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    data: JsonValue = None  # relayed as JSON: a binary attachment is refused


async def _view(ctx, project, viewer: str | None = None) -> dict:
    users = await ctx.store.users.get_users([m.user_id for m in project.members])
    return project_view(project, viewer, {u.id: u for u in users})


async def _push_changed(ctx, project) -> None:
    """project:updated to the room and to every member's own room (for project lists)."""
    view = await _view(ctx, project)
    await ctx.push_project(project.id, "project:updated", {"project": view})
    for member in project.members:
        await ctx.push_user(member.user_id, "project:updated",
                            {"projectId": project.id, "project": view})


@event("project:list", Empty, ack="[project]")
async def on_list(ctx, p: Empty):
    """The projects the caller is a member of, with their role in each."""
    projects = await ctx.store.projects.list_projects_for_user(ctx.user_id)
    ids = {m.user_id for pr in projects for m in pr.members}
    users = {u.id: u for u in await ctx.store.users.get_users(list(ids))}
    return [project_view(pr, ctx.user_id, users) for pr in projects]


@event("project:create", CreatePayload, ack="project", emits=("project:updated",))
async def on_create(ctx, p: CreatePayload):
    """Create a project; the caller becomes its owner."""
    project = await ctx.store.projects.create_project(
        owner_id=ctx.user_id, name=p.name, description=p.description or "", color=p.color)
    view = await _view(ctx, project, ctx.user_id)
    await ctx.push_user(ctx.user_id, "project:updated", {"projectId": project.id, "project": view})
    return view


@event("project:get", IdPayload, scope=Project("id", "viewer"), ack="project")
async def on_get(ctx, p: IdPayload):
    """One project with its members."""
    project = await ctx.store.projects.get_project(p.id)
    if project is None:
        raise NotFound("project not found")
    return await _view(ctx, project, ctx.user_id)


@event("project:update", UpdatePayload, scope=Project("id", "owner"), ack="project",
       emits=("project:updated",))
async def on_update(ctx, p: UpdatePayload):
    """Rename or re-describe a project (owners)."""
    changes = p.model_dump(exclude={"id"}, exclude_unset=True)
    if not changes:
        raise EventError("bad_request", "nothing to change: give name, description or color")
    if "name" in changes and changes["name"] is None:
        raise EventError("bad_request", "name cannot be null")
    if changes.get("description") is None and "description" in changes:
        changes["description"] = ""
    project = await ctx.store.projects.update_project(p.id, **changes)
    await _push_changed(ctx, project)
    return await _view(ctx, project, ctx.user_id)


@event("project:delete", IdPayload, scope=Project("id", "owner"), ack="{id}",
       emits=("project:deleted",))
async def on_delete(ctx, p: IdPayload):
    """Delete a project and everything it owns (owners)."""
    project = await ctx.store.projects.get_project(p.id)
    if project is None:
        raise NotFound("project not found")
    await accounts.delete_project(ctx.services, project)
    return {"id": p.id}


@event("project:join", IdPayload, scope=Project("id", "viewer"),
       ack="{project, members, online, role, room, seq, epoch}", emits=("project:presence",))
async def on_join(ctx, p: IdPayload):
    """Enter the project's room: receive its pushes and appear in its presence."""
    project = await ctx.store.projects.get_project(p.id)
    if project is None:
        raise NotFound("project not found")
    await ctx.gateway.join_project(ctx.sid, ctx.state, p.id, ctx.project_role)
    # The room's position, read after entering it and before the snapshot: every push
    # numbered past it reaches this socket (docs/DELIVERY.md).
    head = (await ctx.services.delivery.head(f"project:{p.id}")).view(f"project:{p.id}")
    view = await _view(ctx, project, ctx.user_id)
    return {"project": view, "members": view["members"], "role": ctx.project_role,
            "online": await ctx.services.presence.users(p.id), **head}


@event("project:leave", IdPayload, ack="{id}", emits=("project:presence",))
async def on_leave(ctx, p: IdPayload):
    """Leave the project's room."""
    if p.id not in ctx.state.projects:
        raise EventError("bad_request", "not in this project's room")
    await ctx.gateway.leave_project(ctx.sid, ctx.state, p.id)
    return {"id": p.id}


@event("project:member:add", MemberAddPayload, scope=Project("id", "owner"), ack="project",
       emits=("project:updated",))
async def on_member_add(ctx, p: MemberAddPayload):
    """Add a registered user by email, or change their role (owners)."""
    user = await ctx.store.users.get_user_by_email(p.email.strip())
    if user is None or not user.is_active:
        raise NotFound("no active user with that email")
    project = await ctx.store.projects.get_project(p.id)
    current = project.role_of(user.id)
    if current == "owner" and p.role != "owner":
        _ensure_other_owner(project, user.id)
    project = await ctx.store.projects.set_member(p.id, user.id, p.role)
    await _push_changed(ctx, project)
    if current is not None and current != p.role:
        await ctx.services.bus.publish("project:role_changed", {
            "projectId": p.id, "userId": user.id, "role": p.role})
    return await _view(ctx, project, ctx.user_id)


@event("project:member:remove", MemberRemovePayload, scope=Project("id", "viewer"), ack="project",
       emits=("project:updated",))
async def on_member_remove(ctx, p: MemberRemovePayload):
    """Remove a member (owners), or leave a project yourself (any member)."""
    if p.userId != ctx.user_id and ctx.project_role != "owner":
        raise Forbidden("only owners remove other members")
    project = await ctx.store.projects.get_project(p.id)
    if project.role_of(p.userId) is None:
        raise NotFound("not a member of this project")
    if project.role_of(p.userId) == "owner":
        _ensure_other_owner(project, p.userId)
    project = await ctx.store.projects.remove_member(p.id, p.userId)
    await _push_changed(ctx, project)
    await ctx.push_user(p.userId, "project:deleted", {"projectId": p.id, "id": p.id,
                                                      "reason": "removed"})
    await ctx.services.bus.publish("project:member_removed", {"projectId": p.id,
                                                              "userId": p.userId})
    return await _view(ctx, project, ctx.user_id)


def _ensure_other_owner(project, user_id: str) -> None:
    if not any(m.role == "owner" and m.user_id != user_id for m in project.members):
        raise Conflict("a project needs at least one owner: make someone else owner first")


@event("project:broadcast", BroadcastPayload, scope=InRoom("id"), ack="null",
       emits=("project:broadcast",))
async def on_broadcast(ctx, p: BroadcastPayload):
    """Relay an ephemeral message (cursor, selection, typing) to the others in the room.

    Not stored. Authorized by room membership (checked at join), so the hot path does no
    database work; size-bounded and rate-limited per socket.
    """
    limit = ctx.settings.broadcast_max_bytes
    if p.data is not None and json_size(p.data) > limit:
        raise EventError("too_large", f"broadcast data is limited to {limit} bytes",
                         {"limit": limit})
    state = ctx.state
    if state.bucket is None:
        state.bucket = TokenBucket(ctx.settings.broadcast_rate, ctx.settings.broadcast_burst,
                                   ctx.services.clock)
    wait = state.bucket.take()
    if wait:
        raise RateLimited("broadcasting too fast", {"retryAfter": round(wait, 3)})
    await ctx.gateway.push_project(p.id, "project:broadcast",
                              {"userId": state.user_id, "event": p.event, "data": p.data},
                              skip_sid=ctx.sid)
    return None


EVENTS = [on_list, on_create, on_get, on_update, on_delete, on_join, on_leave, on_member_add,
          on_member_remove, on_broadcast]
