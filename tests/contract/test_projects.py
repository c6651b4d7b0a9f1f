"""ProjectRepo contract: every backend behaves the same."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from store.base import Member, Project
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id, utcnow


async def test_create_makes_the_owner_a_member(store, make_user):
    owner = await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="Alpha", description="d",
                                            color="#00ff00")
    assert isinstance(p, Project)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"
    assert (p.name, p.description, p.color, p.owner_id) == ("Alpha", "d", "#00ff00", owner.id)
    assert p.members == (Member(owner.id, "owner", p.created_at),)
    assert p.created_at == p.updated_at
    assert p.created_at.utcoffset() == timedelta(0)
    assert abs(p.created_at - utcnow()) < timedelta(seconds=10)
    assert await store.projects.get_project(p.id) == p
    assert await store.projects.get_project(new_id()) is None
    bare = await store.projects.create_project(owner_id=owner.id, name="Bare")
    assert (bare.description, bare.color) == ("", None)


async def test_create_for_unknown_owner_conflicts(store):
    with pytest.raises(Conflict):
        await store.projects.create_project(owner_id=new_id(), name="Orphan")
    assert await store.projects.count_projects() == 0


async def test_list_projects_for_user(store, make_user):
    a, b = await make_user(), await make_user()
    made = sorted([(await store.projects.create_project(owner_id=a.id, name=f"P{i}")).id
                   for i in range(3)])
    other = await store.projects.create_project(owner_id=b.id, name="B's")
    assert [p.id for p in await store.projects.list_projects_for_user(a.id)] == made
    await asyncio.sleep(0.002)  # members are ordered by added_at (then id), at millisecond steps
    await store.projects.set_member(other.id, a.id, "viewer")
    listed = await store.projects.list_projects_for_user(a.id)
    assert [p.id for p in listed] == sorted(made + [other.id])
    shared = next(p for p in listed if p.id == other.id)
    assert [(m.user_id, m.role) for m in shared.members] == [(b.id, "owner"), (a.id, "viewer")]
    assert [p.id for p in await store.projects.list_projects_for_user(b.id)] == [other.id]
    assert await store.projects.list_projects_for_user(new_id()) == []


async def test_update_project(store, make_user):
    owner = await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A", description="d")
    await asyncio.sleep(0.002)
    q = await store.projects.update_project(p.id, name="B", color="blue")
    assert (q.name, q.description, q.color) == ("B", "d", "blue")
    assert q.updated_at > p.updated_at and q.created_at == p.created_at
    assert q.members == p.members
    assert await store.projects.get_project(p.id) == q
    assert (await store.projects.update_project(p.id, color=None)).color is None


async def test_update_unknown_field_and_missing_project(store, make_user):
    owner = await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    with pytest.raises(BadRequest):
        await store.projects.update_project(p.id, owner_id="someone")
    with pytest.raises(NotFound):
        await store.projects.update_project(new_id(), name="B")
    assert await store.projects.get_project(p.id) == p


async def test_set_member_adds_then_changes_role_without_duplicates(store, make_user):
    owner, ed = await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    await asyncio.sleep(0.002)
    added = await store.projects.set_member(p.id, ed.id, "viewer")
    assert [(m.user_id, m.role) for m in added.members] == [(owner.id, "owner"), (ed.id, "viewer")]
    assert added.updated_at > p.updated_at
    first_added_at = added.members[1].added_at
    await asyncio.sleep(0.002)
    changed = await store.projects.set_member(p.id, ed.id, "editor")
    assert [(m.user_id, m.role) for m in changed.members] == [(owner.id, "owner"),
                                                              (ed.id, "editor")]
    assert changed.members[1].added_at == first_added_at  # a role change is not a new membership
    assert changed.updated_at > added.updated_at
    assert await store.projects.get_project(p.id) == changed
    assert await store.projects.get_member_role(p.id, ed.id) == "editor"


async def test_set_member_concurrently_keeps_one_entry(store, backend, make_user):
    owner, ed = await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    other = await backend.open()
    try:
        roles = ["viewer", "editor"] * 5
        await asyncio.gather(*(s.projects.set_member(p.id, ed.id, r)
                               for s, r in zip([store, other] * 5, roles)))
    finally:
        await other.close()
    members = (await store.projects.get_project(p.id)).members
    assert [m.user_id for m in members].count(ed.id) == 1 and len(members) == 2


async def test_set_member_on_missing_project_or_user(store, make_user):
    owner = await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    with pytest.raises(NotFound):
        await store.projects.set_member(new_id(), owner.id, "editor")
    with pytest.raises(Conflict):
        await store.projects.set_member(p.id, new_id(), "editor")
    assert await store.projects.get_project(p.id) == p


async def test_remove_member(store, make_user):
    owner, ed = await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    added = await store.projects.set_member(p.id, ed.id, "editor")
    await asyncio.sleep(0.002)
    removed = await store.projects.remove_member(p.id, ed.id)
    assert [m.user_id for m in removed.members] == [owner.id]
    assert removed.updated_at > added.updated_at
    assert await store.projects.get_project(p.id) == removed
    assert await store.projects.get_member_role(p.id, ed.id) is None
    with pytest.raises(NotFound, match="not a member"):
        await store.projects.remove_member(p.id, ed.id)
    with pytest.raises(NotFound, match="project not found"):
        await store.projects.remove_member(new_id(), owner.id)


async def test_get_member_role(store, make_user):
    owner, v, stranger = await make_user(), await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    q = await store.projects.create_project(owner_id=v.id, name="B")
    await store.projects.set_member(p.id, v.id, "viewer")
    assert await store.projects.get_member_role(p.id, owner.id) == "owner"
    assert await store.projects.get_member_role(p.id, v.id) == "viewer"
    assert await store.projects.get_member_role(q.id, v.id) == "owner"
    assert await store.projects.get_member_role(q.id, owner.id) is None
    assert await store.projects.get_member_role(p.id, stranger.id) is None
    assert await store.projects.get_member_role(new_id(), owner.id) is None


async def test_delete_and_count_projects(store, make_user):
    owner, ed = await make_user(), await make_user()
    assert await store.projects.count_projects() == 0
    p = await store.projects.create_project(owner_id=owner.id, name="A")
    keep = await store.projects.create_project(owner_id=owner.id, name="B")
    await store.projects.set_member(p.id, ed.id, "editor")
    assert await store.projects.count_projects() == 2
    assert await store.projects.delete_project(p.id) is True
    assert await store.projects.delete_project(p.id) is False
    assert await store.projects.get_project(p.id) is None
    assert await store.projects.get_member_role(p.id, ed.id) is None
    assert await store.projects.list_projects_for_user(ed.id) == []
    assert [x.id for x in await store.projects.list_projects_for_user(owner.id)] == [keep.id]
    assert await store.projects.count_projects() == 1


async def test_set_owner_and_count_memberships(store, make_user):
    a, b, c = await make_user(), await make_user(), await make_user()
    p = await store.projects.create_project(owner_id=a.id, name="P")
    await store.projects.create_project(owner_id=a.id, name="Q")
    await store.projects.set_member(p.id, b.id, "viewer")
    moved = await store.projects.set_owner(p.id, b.id)
    assert moved.owner_id == b.id and moved.role_of(b.id) == "owner"
    assert moved.role_of(a.id) == "owner"  # the previous owner stays a member until removed
    assert await store.projects.get_project(p.id) == moved
    again = await store.projects.set_owner(p.id, c.id)  # not a member yet: added as owner
    assert again.owner_id == c.id and again.role_of(c.id) == "owner"
    assert await store.projects.count_memberships([a.id, b.id, c.id, "nobody"]) == \
        {a.id: 2, b.id: 1, c.id: 1}
    assert await store.projects.count_memberships([]) == {}
