"""UserRepo contract: every backend behaves the same."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from store.base import User
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id, utcnow


def assert_utc(dt):
    assert dt is not None and dt.utcoffset() == timedelta(0)
    assert dt.microsecond % 1000 == 0  # both engines keep milliseconds


async def test_create_and_get(store):
    u = await store.users.create_user(email="Ana@Example.com", username="Ana", password_hash="h",
                                      role="admin")
    assert isinstance(u, User)
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.role = "user"
    assert (u.email, u.username, u.password_hash, u.role) == ("Ana@Example.com", "Ana", "h",
                                                              "admin")
    assert u.is_active and not u.is_guest and u.last_login_at is None
    assert u.remaining_imports is None and u.remaining_messages is None
    for dt in (u.created_at, u.updated_at):
        assert_utc(dt)
        assert abs(dt - utcnow()) < timedelta(seconds=10)
    assert await store.users.get_user(u.id) == u
    assert await store.users.get_user("0" * 24) is None


async def test_get_by_email_is_case_insensitive(store, make_user):
    u = await make_user(email="Mixed.Case@Example.COM")
    assert await store.users.get_user_by_email("mixed.case@example.com") == u
    assert await store.users.get_user_by_email("MIXED.CASE@EXAMPLE.COM") == u
    assert await store.users.get_user_by_email("other@example.com") is None


@pytest.mark.parametrize("field, first, second", [
    ("email", "dup@example.com", "DUP@example.com"),
    ("username", "Dupe", "dUPE"),
])
async def test_duplicates_conflict_case_insensitively(store, make_user, field, first, second):
    await make_user(**{field: first})
    with pytest.raises(Conflict) as err:
        await make_user(**{field: second})
    assert err.value.message == f"{field} is already taken"
    assert await store.users.count_users() == 1


async def test_guests_without_email_can_be_many(store, make_user):
    guests = [await make_user(email=None, password_hash=None, is_guest=True, remaining_imports=2,
                              remaining_messages=20) for _ in range(3)]
    assert len({g.id for g in guests}) == 3
    assert all(g.is_guest and g.email is None and g.remaining_imports == 2 for g in guests)
    assert await store.users.count_users() == 3


async def test_update_fields(store, make_user):
    u = await make_user()
    login = utcnow()
    v = await store.users.update_user(u.id, email="New@Example.com", username="Renamed",
                                      password_hash="h2", role="admin", is_guest=False,
                                      is_active=False, remaining_imports=5, remaining_messages=None,
                                      last_login_at=login, last_seen_at=login)
    assert (v.email, v.username, v.password_hash, v.role) == ("New@Example.com", "Renamed", "h2",
                                                              "admin")
    assert v.is_active is False and v.remaining_imports == 5
    assert v.last_login_at == login.replace(microsecond=login.microsecond // 1000 * 1000)
    assert_utc(v.last_login_at)
    assert v.last_seen_at == v.last_login_at
    assert v.updated_at >= u.updated_at and v.created_at == u.created_at
    assert await store.users.get_user(u.id) == v
    assert await store.users.get_user_by_email("new@example.com") == v
    assert await store.users.get_user_by_email(u.email) is None


async def test_update_to_taken_email_or_username_conflicts(store, make_user):
    a, b = await make_user(), await make_user()
    with pytest.raises(Conflict, match="email is already taken"):
        await store.users.update_user(b.id, email=a.email.upper())
    with pytest.raises(Conflict, match="username is already taken"):
        await store.users.update_user(b.id, username=a.username.upper())
    assert await store.users.get_user(b.id) == b
    # Keeping one's own value (in another case) is not a conflict.
    assert (await store.users.update_user(b.id, email=b.email.upper())).email == b.email.upper()


async def test_upgrade_guest_gives_email_and_clears_quotas(store, make_user):
    g = await make_user(email=None, is_guest=True, remaining_imports=2, remaining_messages=20)
    await make_user(email=None, is_guest=True)
    up = await store.users.update_user(g.id, email="up@example.com", is_guest=False,
                                       remaining_imports=None, remaining_messages=None)
    assert up.email == "up@example.com" and not up.is_guest and up.remaining_messages is None
    assert await store.users.spend_quota(g.id, "remaining_messages") == -1


async def test_update_unknown_field_and_missing_user(store, make_user):
    u = await make_user()
    with pytest.raises(BadRequest):
        await store.users.update_user(u.id, created_at=utcnow())
    with pytest.raises(BadRequest):
        await store.users.update_user(u.id, id="x")
    with pytest.raises(NotFound):
        await store.users.update_user(new_id(), role="admin")
    assert await store.users.get_user(u.id) == u


async def test_spend_quota_to_zero(store, make_user):
    g = await make_user(is_guest=True, remaining_imports=2, remaining_messages=1)
    assert await store.users.spend_quota(g.id, "remaining_imports") == 1
    assert await store.users.spend_quota(g.id, "remaining_imports") == 0
    assert await store.users.spend_quota(g.id, "remaining_imports") is None
    assert await store.users.spend_quota(g.id, "remaining_imports") is None
    assert await store.users.spend_quota(g.id, "remaining_messages") == 0
    after = await store.users.get_user(g.id)
    assert (after.remaining_imports, after.remaining_messages) == (0, 0)


async def test_spend_quota_unlimited_unknown_and_missing(store, make_user):
    u = await make_user()
    assert await store.users.spend_quota(u.id, "remaining_messages") == -1
    assert (await store.users.get_user(u.id)).remaining_messages is None
    with pytest.raises(BadRequest):
        await store.users.spend_quota(u.id, "password_hash")
    with pytest.raises(NotFound):
        await store.users.spend_quota(new_id(), "remaining_messages")


async def test_spend_quota_concurrently_never_overspends(store, backend, make_user):
    g = await make_user(is_guest=True, remaining_messages=5)
    other = await backend.open()  # a second instance racing the first
    try:
        stores = [store, other] * 10
        results = await asyncio.gather(
            *(s.users.spend_quota(g.id, "remaining_messages") for s in stores))
    finally:
        await other.close()
    assert sorted(r for r in results if r is not None) == [0, 1, 2, 3, 4]
    assert results.count(None) == 15
    assert (await store.users.get_user(g.id)).remaining_messages == 0


async def test_get_users(store, make_user):
    a, b, c = await make_user(), await make_user(), await make_user()
    got = await store.users.get_users([c.id, a.id, new_id(), a.id])
    assert sorted(got, key=lambda u: u.id) == sorted([a, c], key=lambda u: u.id)  # any order
    assert await store.users.get_users([]) == []
    assert b not in got


async def collect(store, **kwargs):
    """Every page of list_users, as (ids, number of pages)."""
    ids, pages, cursor = [], 0, None
    while True:
        page = await store.users.list_users(cursor=cursor, **kwargs)
        pages += 1
        ids += [u.id for u in page.items]
        if page.next_cursor is None:
            return ids, pages
        assert page.next_cursor != page.items[-1].id  # opaque, not the raw id
        cursor = page.next_cursor


async def test_list_users_pages_in_id_order(store, make_user):
    # new_id() orders by millisecond only, so ids made within one may not follow creation.
    made = sorted([(await make_user()).id for _ in range(7)])
    assert await collect(store, limit=3) == (made, 3)
    assert await collect(store, limit=7) == (made, 1)
    first = await store.users.list_users(limit=50)
    assert [u.id for u in first.items] == made and first.next_cursor is None
    with pytest.raises(BadRequest):  # a raw id is not a cursor
        await store.users.list_users(cursor=made[-1])


async def test_list_users_q_matches_prefixes_case_insensitively(store, make_user):
    ana = await make_user(email="ana.silva@example.com", username="AnaS")
    bob = await make_user(email="bob@corp.io", username="Anabel")
    carl = await make_user(email="carl@example.com", username="carl_ana")
    guest = await make_user(email=None, username="ANAGRAM")
    ids, pages = await collect(store, q="ANA", limit=2)
    assert ids == sorted([ana.id, bob.id, guest.id]) and pages == 2
    assert (await collect(store, q="carl@", limit=1))[0] == [carl.id]
    assert (await collect(store, q="example"))[0] == []  # not a prefix of anything
    assert (await collect(store, q="nobody"))[0] == []
    assert carl.id in (await collect(store, q=""))[0]


async def test_list_users_filters_by_role_active_and_guest(store, make_user):
    admin = await make_user(role="admin")
    off = await make_user()
    await store.users.update_user(off.id, is_active=False)
    guest = await make_user(email=None, password_hash=None, is_guest=True)
    plain = await make_user()
    ids = [u.id for u in (await store.users.list_users(role="admin")).items]
    assert ids == [admin.id]
    ids = [u.id for u in (await store.users.list_users(active=False)).items]
    assert ids == [off.id]
    ids = [u.id for u in (await store.users.list_users(guest=True)).items]
    assert ids == [guest.id]
    ids = [u.id for u in (await store.users.list_users(guest=False, active=True,
                                                          role="user")).items]
    assert ids == sorted([plain.id])
    assert await store.users.count_admins() == 1
    await store.users.update_user(admin.id, is_active=False)
    assert await store.users.count_admins() == 0


async def test_get_user_by_login_is_email_or_username(store, make_user):
    u = await make_user(email="Mixed@Example.com", username="MixedCase")
    assert (await store.users.get_user_by_login("mixed@example.COM")).id == u.id
    assert (await store.users.get_user_by_login("mixedcase")).id == u.id
    assert await store.users.get_user_by_login("nobody") is None
    assert await store.users.get_user_by_login("mixedcase@example.com") is None


@pytest.mark.parametrize("q, expected", [
    ("%", ["%percent"]), ("_", ["_under"]), (".*", [".*dotstar"]), ("a.c", []),
    ("\\", ["\\back"]), ("(", ["(paren"]), ("[a", []),
])
async def test_list_users_q_special_characters_are_literal(store, make_user, q, expected):
    for name in ("%percent", "_under", ".*dotstar", "abc", "\\back", "(paren", "plain"):
        await make_user(username=name)
    page = await store.users.list_users(q=q)
    assert [u.username for u in page.items] == expected


async def test_delete_user_cascades_memberships_and_tokens(store, make_user):
    owner, gone = await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="P")
    await store.projects.set_member(p.id, gone.id, "editor")
    mine = await store.projects.create_project(owner_id=gone.id, name="Mine")
    await store.tokens.create_refresh_token(token_hash="t-gone", user_id=gone.id, family_id="f",
                                            expires_at=utcnow() + timedelta(days=1))
    await store.tokens.create_refresh_token(token_hash="t-owner", user_id=owner.id,
                                            family_id="f2", expires_at=utcnow() + timedelta(days=1))
    assert await store.users.delete_user(gone.id) is True
    assert await store.users.get_user(gone.id) is None
    assert await store.users.delete_user(gone.id) is False
    assert await store.projects.get_member_role(p.id, gone.id) is None
    assert [m.user_id for m in (await store.projects.get_project(p.id)).members] == [owner.id]
    assert await store.projects.list_projects_for_user(gone.id) == []
    # Ownership is not a foreign key on either engine: the project stays, without members.
    assert (await store.projects.get_project(mine.id)).members == ()
    assert await store.tokens.consume_refresh_token("t-gone") == (None, False)
    assert (await store.tokens.consume_refresh_token("t-owner"))[1] is True
    assert await store.users.count_users() == 1


async def test_count_users(store, make_user):
    assert await store.users.count_users() == 0
    users = [await make_user() for _ in range(4)]
    assert await store.users.count_users() == 4
    await store.users.delete_user(users[0].id)
    assert await store.users.count_users() == 3


async def test_list_idle_guests_by_last_seen_else_created(store, make_user):
    guest = {"email": None, "password_hash": None, "is_guest": True}
    never_seen = await make_user(**guest)
    seen_now = await make_user(**guest)
    seen_long_ago = await make_user(**guest)
    await make_user()  # a registered user is never an idle guest
    await store.users.update_user(seen_now.id, last_seen_at=utcnow() + timedelta(days=1))
    await store.users.update_user(seen_long_ago.id, last_seen_at=utcnow() - timedelta(days=60))

    soon = utcnow() + timedelta(hours=1)
    assert await store.users.list_idle_guests(soon) == [seen_long_ago.id, never_seen.id]
    assert await store.users.list_idle_guests(soon, limit=1) == [seen_long_ago.id]
    assert await store.users.list_idle_guests(utcnow() - timedelta(days=30)) == \
        [seen_long_ago.id]
