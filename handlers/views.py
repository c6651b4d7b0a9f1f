"""How stored objects look on the wire (camelCase, ISO-8601 UTC times)."""
from __future__ import annotations

from typing import Any

from store.base import Project, User
from store.ids import iso


def user_view(user: User) -> dict:
    out: dict[str, Any] = {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "role": user.role,
        "isGuest": user.is_guest,
        "createdAt": iso(user.created_at),
    }
    if user.is_guest:
        out["remainingImports"] = user.remaining_imports
        out["remainingMessages"] = user.remaining_messages
    return out


def project_view(project: Project, viewer_id: str | None = None,
                 users: dict[str, User] | None = None) -> dict:
    out = {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "color": project.color,
        "ownerId": project.owner_id,
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
        "members": [member_view(m, (users or {}).get(m.user_id)) for m in project.members],
    }
    if viewer_id is not None:
        out["role"] = project.role_of(viewer_id)
    return out


def member_view(member, user: User | None) -> dict:
    out = {"userId": member.user_id, "role": member.role, "addedAt": iso(member.added_at)}
    if user is not None:
        out["username"] = user.username
        out["email"] = user.email
    return out
