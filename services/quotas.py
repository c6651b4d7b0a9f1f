"""Guest quotas: a guest account may send a limited number of chat messages and make a
limited number of imports (captures, CSV tables, chat histories); registered users have none."""
from __future__ import annotations

from store.base import Store
from store.errors import EventError

GUEST_QUOTAS = {"remaining_messages": "chat messages", "remaining_imports": "imports"}


async def spend_guest_quota(store: Store, user_id: str, quota: str) -> int | None:
    """Take one of a guest's ``quota`` (``remaining_messages``/``remaining_imports``); what is
    left (-1 for registered users, who have no quota). ``forbidden`` with reason
    ``guest_limit`` at zero."""
    remaining = await store.users.spend_quota(user_id, quota)
    if remaining is None:
        raise EventError("forbidden", f"guests may make only a limited number of "
                         f"{GUEST_QUOTAS[quota]}: sign up to continue", {"reason": "guest_limit"})
    return remaining
