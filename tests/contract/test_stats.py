"""StatsRepo contract: site-wide counts follow every write that changes them."""
from __future__ import annotations

from datetime import timedelta

from store.ids import new_id, utcnow


async def test_site_counts_follow_writes(store, make_user):
    before = await store.stats.site_counts(utcnow() - timedelta(days=1))
    u = await make_user()
    g = await make_user(email=None, password_hash=None, is_guest=True)
    await store.users.update_user(u.id, last_seen_at=utcnow())
    p = await store.projects.create_project(owner_id=u.id, name="P")
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=p.id, title="c")
    exchange = await store.chat.start_exchange(
        conv.id, author_id=u.id, content="hi", attachments=[], instance="i",
        lease_until=utcnow() + timedelta(minutes=1))
    assert exchange.reply is not None
    for size in (100, 23):
        fid = new_id()
        await store.files.create_file(file_id=fid, project_id=p.id, name="f", size=size,
                                      mime="text/plain", sha256="0" * 64, uploader_id=u.id,
                                      storage_key=fid)
    now = await store.stats.site_counts(utcnow() - timedelta(days=1))
    grew = {k: getattr(now, k) - getattr(before, k)
            for k in ("users", "guests", "projects", "conversations", "messages", "files",
                      "storage_bytes", "active_users")}
    assert grew == {"users": 2, "guests": 1, "projects": 1, "conversations": 1,
                    "messages": 2, "files": 2, "storage_bytes": 123, "active_users": 1}
    assert (await store.stats.site_counts(utcnow() + timedelta(days=1))).active_users == 0

    await store.users.update_user(g.id, is_guest=False)  # an upgraded guest
    await store.chat.delete_conversation(conv.id)  # its messages go with it
    await store.files.delete_project_files(p.id)
    after = await store.stats.site_counts(utcnow() - timedelta(days=1))
    assert (after.guests, after.conversations, after.messages, after.files,
            after.storage_bytes) == (before.guests, before.conversations, before.messages,
                                     before.files, before.storage_bytes)
    await store.projects.delete_project(p.id)
    await store.users.delete_user(g.id)
    final = await store.stats.site_counts(utcnow() - timedelta(days=1))
    assert (final.users, final.projects) == (before.users + 1, before.projects)
