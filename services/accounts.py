"""Removing what belongs to someone: a project with everything in it, an account with
everything only it owned, and the housekeeping that expires idle guests and old audit
entries. The same functions serve ``project:delete``, the admin's user deletion and the
guest reaper, so a deletion takes the same parts wherever it starts."""
from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from services.background import Background, every
from services.container import Core
from services.leader import Leader
from store.base import Project

log = logging.getLogger("services.accounts")


async def delete_project(core: Core, project: Project) -> None:
    """The project and everything it owns; its room and members are told, every instance
    takes its sockets out of the room."""
    # Domains that own data in a project registered a hook; they go first so nothing is
    # left pointing at a project that no longer exists.
    for hook in core.hooks.project_deleted:
        await hook(project.id)
    await core.store.projects.delete_project(project.id)
    await core.gateway.push_project(project.id, "project:deleted", {"id": project.id})
    for member in project.members:
        await core.gateway.push("project:deleted", {"projectId": project.id, "id": project.id},
                                room=f"user:{member.user_id}")
    await core.bus.publish("project:closed", {"projectId": project.id})


async def delete_account(core: Core, user_id: str, reason: str = "deleted",
                         transfer_to: str | None = None) -> dict | None:
    """The account and what only it had: its sign-ins end everywhere first; each project it
    owns goes to ``transfer_to``, else to another owner among its members, else is deleted
    with everything in it; then its private conversations, memberships and tokens. None
    when there was no such account, else ``{projectsDeleted, projectsTransferred}``."""
    store = core.store
    if await store.users.get_user(user_id) is None:
        return None
    await core.sessions.revoke_user(user_id, reason)
    deleted = transferred = 0
    for project in await store.projects.list_projects_for_user(user_id):
        if project.owner_id != user_id:
            continue  # a membership: it goes with the user
        heir = transfer_to or next((m.user_id for m in project.members
                                    if m.role == "owner" and m.user_id != user_id), None)
        if heir:
            await store.projects.set_owner(project.id, heir)
            transferred += 1
        else:
            await delete_project(core, project)
            deleted += 1
    conversations = []
    while True:
        page = await store.chat.list_conversations(project_id=None, owner_id=user_id,
                                                   limit=200)
        for conv in page.items:
            await store.chat.delete_conversation(conv.id)
            conversations.append(conv.id)
        if page.next_cursor is None:
            break
    if conversations:
        await core.bus.publish("chat:closed", {"conversationIds": conversations})
    await store.users.delete_user(user_id)  # memberships and tokens go with it
    return {"projectsDeleted": deleted, "projectsTransferred": transferred}


class Housekeeping:
    """One instance at a time (a leader lease) deletes guests idle for GUEST_TTL_DAYS with
    their data, and audit entries older than AUDIT_DAYS: hourly, or 24 times per TTL when
    that is shorter."""

    def __init__(self, core: Core, leader: Leader):
        self.core, self.leader = core, leader
        self.interval = min(3600.0, core.settings.guest_ttl_days * 86400 / 24)
        self._loop = Background("housekeeping")
        self.guests_deleted = 0

    async def start(self) -> None:
        self._loop.start(lambda: every(self.core.clock, self.interval, self._sweep_if_leader,
                                       log, "housekeeping"))

    async def stop(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.leader.resign()

    async def _sweep_if_leader(self) -> None:
        if await self.leader.hold():
            await self.sweep()

    async def sweep(self) -> int:
        """One pass; how many guests went."""
        core, s = self.core, self.core.settings
        now = core.clock.now()
        gone = 0
        while True:
            idle = await core.store.users.list_idle_guests(
                now - timedelta(days=s.guest_ttl_days), limit=100)
            for user_id in idle:
                gone += await delete_account(core, user_id, "expired") is not None
            if len(idle) < 100:
                break
        await core.store.audit.purge(now - timedelta(days=s.audit_days))
        if gone:
            log.info("idle guests deleted", extra={"fields": {"count": gone}})
        self.guests_deleted += gone
        return gone
