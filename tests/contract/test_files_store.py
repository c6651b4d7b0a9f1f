"""FileRepo contract: every backend behaves the same."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from store.base import FileRecord
from store.errors import Conflict
from store.ids import new_id, utcnow


async def make_file(store, project_id: str, name: str = "a.csv", **overrides) -> FileRecord:
    fid = new_id()
    fields = {"file_id": fid, "project_id": project_id, "name": name, "size": 12,
              "mime": "text/csv", "sha256": "ab" * 32, "uploader_id": "u1", "storage_key": fid}
    fields.update(overrides)
    return await store.files.create_file(**fields)


async def test_create_and_get(store):
    pid = new_id()
    f = await make_file(store, pid, "données é.csv", size=3 * 2 ** 40)
    assert isinstance(f, FileRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.name = "x"
    assert (f.project_id, f.name, f.size, f.mime, f.uploader_id, f.storage_key) == \
        (pid, "données é.csv", 3 * 2 ** 40, "text/csv", "u1", f.id)
    assert f.created_at.utcoffset() == timedelta(0)
    assert abs(f.created_at - utcnow()) < timedelta(seconds=10)
    assert await store.files.get_file(f.id) == f
    assert await store.files.get_file(new_id()) is None


async def test_same_id_twice_conflicts(store):
    f = await make_file(store, new_id())
    with pytest.raises(Conflict):
        await make_file(store, new_id(), file_id=f.id)
    assert await store.files.get_file(f.id) == f


async def test_list_pages_by_id_within_the_project(store):
    pid, other = new_id(), new_id()
    made = [(await make_file(store, pid, f"f{i}")).id for i in range(5)]
    await make_file(store, other)
    seen, cursor, pages = [], None, 0
    while True:
        page = await store.files.list_files(pid, cursor=cursor, limit=2)
        assert len(page.items) <= 2
        seen += [f.id for f in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(made) and pages == 3
    exact = await store.files.list_files(pid, limit=5)  # no empty last page
    assert [f.id for f in exact.items] == sorted(made) and exact.next_cursor is None
    assert (await store.files.list_files(new_id())).items == []


async def test_delete_returns_the_record_once(store):
    f = await make_file(store, new_id())
    assert await store.files.delete_file(f.id) == f
    assert await store.files.delete_file(f.id) is None
    assert await store.files.get_file(f.id) is None


async def test_delete_project_files_returns_exactly_those(store):
    pid, other = new_id(), new_id()
    mine = [await make_file(store, pid, f"f{i}") for i in range(3)]
    kept = await make_file(store, other)
    gone = await store.files.delete_project_files(pid)
    assert sorted(gone, key=lambda f: f.id) == mine
    assert (await store.files.list_files(pid)).items == []
    assert await store.files.get_file(kept.id) == kept
    assert await store.files.delete_project_files(pid) == []
