"""AuditRepo contract: every backend behaves the same."""
from __future__ import annotations

from datetime import timedelta

from store.base import AuditEntry
from store.ids import utcnow


async def test_append_and_list_newest_first_with_filters(store, make_user):
    a, b = await make_user(), await make_user()
    first = await store.audit.append("login_failed", target_id=a.id, ip="10.0.0.1",
                                     details={"attempts": 3})
    assert isinstance(first, AuditEntry) and first.details == {"attempts": 3}
    await store.audit.append("user_deactivated", actor_id=b.id, target_id=a.id, ip="10.0.0.2")
    await store.audit.append("refresh_reuse", actor_id=b.id)
    await store.audit.append("login_failed", target_id=b.id, ip="10.0.0.3")

    page = await store.audit.list_entries(limit=10)
    assert [e.kind for e in page.items] == ["login_failed", "refresh_reuse",
                                            "user_deactivated", "login_failed"]
    assert page.next_cursor is None
    assert page.items[-1] == first  # what was appended is what is read back

    kinds = await store.audit.list_entries(kind="login_failed")
    assert [e.target_id for e in kinds.items] == [b.id, a.id]
    about_a = await store.audit.list_entries(user_id=a.id)
    assert [e.kind for e in about_a.items] == ["user_deactivated", "login_failed"]
    by_b = await store.audit.list_entries(user_id=b.id, kind="refresh_reuse")
    assert [(e.kind, e.actor_id) for e in by_b.items] == [("refresh_reuse", b.id)]


async def test_pages_by_cursor(store):
    for i in range(5):
        await store.audit.append("k", details={"i": i})
    seen, cursor = [], None
    while True:
        page = await store.audit.list_entries(cursor=cursor, limit=2)
        seen += [e.details["i"] for e in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [4, 3, 2, 1, 0]


async def test_purge_drops_only_older_entries(store):
    await store.audit.append("old")
    assert await store.audit.purge(utcnow() - timedelta(days=1)) == 0
    assert await store.audit.purge(utcnow() + timedelta(seconds=1)) == 1
    assert (await store.audit.list_entries()).items == []
