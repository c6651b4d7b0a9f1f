"""admin:* — the site admin's events (role ``admin``; everyone else gets ``forbidden``):
users, their roles and activation, deletion with what they own, site metrics, the audit
log. Every change is audited with the admin, the target and the address."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, StrictBool

from handlers.base import Empty, Payload, event
from services import accounts
from store.base import AuditEntry, User
from store.errors import Conflict, EventError, NotFound
from store.ids import iso

Id = Field(min_length=1, max_length=64)
Limit = Field(default=50, ge=1, le=200)
Cursor = Field(default=None, max_length=64)


class UsersPayload(Payload):
    q: str | None = Field(default=None, max_length=254)
    role: Literal["user", "admin"] | None = None
    active: StrictBool | None = None
    guest: StrictBool | None = None
    cursor: str | None = Cursor
    limit: int = Limit


class UserUpdatePayload(Payload):
    id: str = Id
    role: Literal["user", "admin"] | None = None
    active: StrictBool | None = None


class UserDeletePayload(Payload):
    id: str = Id
    transferTo: str | None = Field(default=None, min_length=1, max_length=64)


class AuditPayload(Payload):
    cursor: str | None = Cursor
    limit: int = Limit
    userId: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=64)


def admin_user_view(user: User, projects: int) -> dict:
    return {"id": user.id, "email": user.email, "username": user.username, "role": user.role,
            "isGuest": user.is_guest, "active": user.is_active, "createdAt": iso(user.created_at),
            "lastSeenAt": iso(user.last_seen_at), "projects": projects}


def audit_view(entry: AuditEntry) -> dict:
    return {"id": entry.id, "kind": entry.kind, "actorId": entry.actor_id,
            "targetId": entry.target_id, "ip": entry.ip, "details": entry.details,
            "at": iso(entry.at)}


async def _target(ctx, user_id: str) -> User:
    user = await ctx.store.users.get_user(user_id)
    if user is None:
        raise NotFound("user not found")
    return user


async def _keep_an_admin(ctx, user: User) -> None:
    """The last active admin cannot be demoted, deactivated or deleted: someone must be
    left who can undo it."""
    if user.role == "admin" and user.is_active and await ctx.store.users.count_admins() <= 1:
        raise Conflict("this is the last active admin; make another admin first",
                       {"reason": "last_admin"})


@event("admin:users", UsersPayload, admin=True,
       ack="{items: [{id, email, username, role, isGuest, active, createdAt, lastSeenAt, "
           "projects}], nextCursor}")
async def on_users(ctx, p: UsersPayload):
    """Every account, in id order (keyset-paged): ``q`` is a prefix of the email or the
    username (case-insensitive); filter by role, active, guest."""
    page = await ctx.store.users.list_users(cursor=p.cursor, limit=p.limit, q=p.q or None,
                                            role=p.role, active=p.active, guest=p.guest)
    counts = await ctx.store.projects.count_memberships([u.id for u in page.items])
    return {"items": [admin_user_view(u, counts.get(u.id, 0)) for u in page.items],
            "nextCursor": page.next_cursor}


@event("admin:user:update", UserUpdatePayload, admin=True, ack="user (as in admin:users)",
       emits=("auth:revoked",))
async def on_user_update(ctx, p: UserUpdatePayload):
    """Change a user's site role or activation. Deactivating ends every session of theirs
    on every instance (``auth:revoked``, disconnected) and refuses their sign-ins; a role
    change reaches their open sockets at their next event. The last active admin stays."""
    user = await _target(ctx, p.id)
    changes: dict = {}
    if p.role is not None and p.role != user.role:
        changes["role"] = p.role
    if p.active is not None and p.active != user.is_active:
        changes["is_active"] = p.active
    if changes.get("role") == "user" or changes.get("is_active") is False:
        await _keep_an_admin(ctx, user)
    if changes:
        user = await ctx.store.users.update_user(user.id, **changes)
    if "is_active" in changes:
        if not user.is_active:
            await ctx.services.sessions.revoke_user(user.id, "deactivated")
        await _audit(ctx, "user_deactivated" if not user.is_active else "user_reactivated",
                     user.id)
    if "role" in changes:
        await ctx.services.bus.publish("user:role_changed", {"userId": user.id,
                                                             "role": user.role})
        await _audit(ctx, "role_changed", user.id, {"role": user.role})
    counts = await ctx.store.projects.count_memberships([user.id])
    return admin_user_view(user, counts.get(user.id, 0))


@event("admin:user:delete", UserDeletePayload, admin=True,
       ack="{id, projectsDeleted, projectsTransferred}", emits=("auth:revoked",))
async def on_user_delete(ctx, p: UserDeletePayload):
    """Delete a user: their sessions end everywhere; each project they own goes to
    ``transferTo`` (a user id), else to another owner among its members, else is deleted
    with everything in it (files, tables, captures, chats); their private conversations,
    memberships and tokens go."""
    user = await _target(ctx, p.id)
    await _keep_an_admin(ctx, user)
    if p.transferTo is not None:
        heir = await ctx.store.users.get_user(p.transferTo)
        if heir is None or not heir.is_active or heir.is_guest or heir.id == user.id:
            raise EventError("bad_request", "transferTo must be another active, registered "
                             "user", {"field": "transferTo"})
    out = await accounts.delete_account(ctx.services, user.id, "deleted", p.transferTo)
    if out is None:
        raise NotFound("user not found")
    await _audit(ctx, "user_deleted", user.id,
                 {"email": user.email, "username": user.username, "transferTo": p.transferTo,
                  **out})
    return {"id": user.id, **out}


@event("admin:metrics", Empty, admin=True,
       ack="{totalUsers, totalGuests, totalProjects, totalConversations, totalMessages, "
           "totalFiles, storageBytes, activeUsers24h, onlineNow, instances: [{id, sockets, "
           "startedAt}], jobs: {running, queued}}")
async def on_metrics(ctx, p: Empty):
    """Site-wide figures: totals kept by counters (no scans), users seen in the last 24 h,
    distinct users online on any instance, the live instances and the job queues."""
    services = ctx.services
    counts = await ctx.store.stats.site_counts(services.clock.now() - timedelta(days=1))
    instances, online = await services.instances.snapshot()
    return {
        "totalUsers": counts.users, "totalGuests": counts.guests,
        "totalProjects": counts.projects, "totalConversations": counts.conversations,
        "totalMessages": counts.messages, "totalFiles": counts.files,
        "storageBytes": counts.storage_bytes, "activeUsers24h": counts.active_users,
        "onlineNow": online,
        "instances": [{"id": i["id"], "sockets": i["sockets"],
                       "startedAt": iso(datetime.fromtimestamp(i["startedAt"], UTC))}
                      for i in instances],
        "jobs": {"running": counts.jobs_running, "queued": counts.jobs_queued},
    }


@event("admin:audit", AuditPayload, admin=True,
       ack="{items: [{id, kind, actorId, targetId, ip, details, at}], nextCursor}")
async def on_audit(ctx, p: AuditPayload):
    """The audit log, newest first (kept ``AUDIT_DAYS``): sign-in failures and blocks,
    refresh-token reuse, and every admin action; ``userId`` matches actor or target."""
    page = await ctx.store.audit.list_entries(cursor=p.cursor, limit=p.limit,
                                              user_id=p.userId, kind=p.kind)
    return {"items": [audit_view(e) for e in page.items], "nextCursor": page.next_cursor}


async def _audit(ctx, kind: str, target: str, details: dict | None = None) -> None:
    await ctx.store.audit.append(kind, actor_id=ctx.user_id, target_id=target,
                                 ip=ctx.state.ip, details=details)


EVENTS = [on_users, on_user_update, on_user_delete, on_metrics, on_audit]
