"""Guest quotas: a guest account may send a limited number of chat messages and make a
limited number of imports (captures, CSV tables, chat histories); registered users have none.

Every spend is pushed to the guest's own room (``auth:quota``) with what is left: the count a
client showed at sign-in is otherwise stale after the first import, and some spends happen
where the client cannot see them (a capture upload spends when the server starts its ingest).
"""
from __future__ import annotations

from services.gateway import Gateway
from store.base import Store
from store.errors import EventError

GUEST_QUOTAS = {"remaining_messages": "chat messages", "remaining_imports": "imports"}
QUOTA_PUSH = "auth:quota"
# The user view's field (handlers/views.py user_view) for each quota.
QUOTA_FIELD = {"remaining_messages": "remainingMessages", "remaining_imports": "remainingImports"}


async def spend_guest_quota(store: Store, gateway: Gateway, user_id: str, quota: str) -> int | None:
    """Take one of a guest's ``quota`` (``remaining_messages``/``remaining_imports``) and push
    what is left to the guest's room; what is left (-1 for registered users, who have no
    quota and get no push). ``forbidden`` with reason ``guest_limit`` at zero."""
    remaining = await store.users.spend_quota(user_id, quota)
    if remaining is None:
        raise EventError("forbidden", f"guests may make only a limited number of "
                         f"{GUEST_QUOTAS[quota]}: sign up to continue", {"reason": "guest_limit"})
    if remaining >= 0:
        await gateway.push(QUOTA_PUSH, {"userId": user_id, QUOTA_FIELD[quota]: remaining},
                           room=f"user:{user_id}")
    return remaining
