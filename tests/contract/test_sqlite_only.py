"""SQLite specifics: several server processes on one host share one file.

Not contract tests: they exercise what only the embedded engine has (a file, migrations,
BEGIN IMMEDIATE across connections and processes).
"""
from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from store.ids import utcnow
from store.sqlite import SqliteStore
from store.sqlite.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]
LATEST = MIGRATIONS[-1][0]


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


async def test_instances_open_and_migrate_a_fresh_file_at_once(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    stores = await asyncio.gather(*(SqliteStore.open(path) for _ in range(4)))
    for s in stores:
        await s.close()
    assert user_version(path) == LATEST


async def test_open_waits_for_another_process_still_migrating(tmp_path):
    """The race above, made deterministic: a fresh file whose write lock another process
    holds (its migration under way) must make ``open`` wait, not fail "database is locked"."""
    path = tmp_path / "busy.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE other_process_was_here (x)")
        opening = asyncio.create_task(SqliteStore.open(path))
        await asyncio.sleep(0.3)
        assert not opening.done()
        other.execute("COMMIT")
    finally:
        other.close()
    s = await opening
    try:
        assert await s.users.count_users() == 0
        assert user_version(path) == LATEST
    finally:
        await s.close()


async def test_instances_on_one_file_see_each_others_writes(tmp_path):
    path = tmp_path / "shared.sqlite3"
    stores = [await SqliteStore.open(path) for _ in range(3)]
    try:
        made = await asyncio.gather(*(
            s.users.create_user(email=f"p{i}@example.com", username=f"p{i}", password_hash="h")
            for i, s in enumerate(stores)))
        p = await stores[0].projects.create_project(owner_id=made[0].id, name="Shared")
        await stores[1].projects.set_member(p.id, made[1].id, "editor")
        for s in stores:
            assert await s.users.count_users() == 3
            assert set(await s.users.get_users([u.id for u in made])) == set(made)
            assert await s.projects.get_member_role(p.id, made[1].id) == "editor"
    finally:
        for s in stores:
            await s.close()


async def test_data_survives_close_and_reopen(tmp_path):
    path = tmp_path / "kept.sqlite3"
    s = await SqliteStore.open(path)
    u = await s.users.create_user(email="k@example.com", username="k", password_hash="h")
    await s.tokens.create_refresh_token(token_hash="t", user_id=u.id, family_id="f",
                                        expires_at=utcnow() + timedelta(days=1))
    await s.close()
    s = await SqliteStore.open(path)
    try:
        assert await s.users.get_user(u.id) == u
        assert (await s.tokens.consume_refresh_token("t"))[1] is True
        assert user_version(path) == LATEST
    finally:
        await s.close()


CHILD = """
import asyncio, sys
from pathlib import Path
from store.sqlite import SqliteStore

async def main(path, n):
    s = await SqliteStore.open(Path(path))
    try:
        if n == "consume":
            print((await s.tokens.consume_refresh_token("shared"))[1])
        else:
            await s.users.create_user(email=f"proc{n}@example.com", username=f"proc{n}",
                                      password_hash="h")
            print(await s.users.count_users() >= 1)
    finally:
        await s.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def run_processes(path: Path, args: list[str]) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), a], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a in args]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


async def test_processes_migrate_and_write_one_file(tmp_path):
    path = tmp_path / "procs.sqlite3"
    outs = await asyncio.to_thread(run_processes, path, [str(i) for i in range(4)])
    assert outs == ["True"] * 4
    s = await SqliteStore.open(path)
    try:
        assert await s.users.count_users() == 4
        assert user_version(path) == LATEST
    finally:
        await s.close()


async def test_processes_consume_one_token_exactly_once(tmp_path):
    path = tmp_path / "race.sqlite3"
    s = await SqliteStore.open(path)
    try:
        u = await s.users.create_user(email="r@example.com", username="r", password_hash="h")
        await s.tokens.create_refresh_token(token_hash="shared", user_id=u.id, family_id="f",
                                            expires_at=utcnow() + timedelta(days=1))
        outs = await asyncio.to_thread(run_processes, path, ["consume"] * 4)
        assert sorted(outs) == ["False"] * 3 + ["True"]
    finally:
        await s.close()


async def test_an_import_under_way_across_the_upgrade_that_indexes_as_lines_arrive(tmp_path):
    """Migration 10: before it, lines were indexed and counted only at publish. A chat whose
    import was under way then is indexed and counted with its next batch, or at publish."""
    from datetime import UTC, datetime

    from ingest.chats.model import ParsedMessage, message_row

    path = tmp_path / "upgraded.sqlite3"
    with sqlite3.connect(path) as conn:
        for version, statements in MIGRATIONS:
            if version < 10:
                for statement in statements:
                    conn.execute(statement)
        conn.execute("PRAGMA user_version=9")
        for num, file_id in ((1, "f1"), (2, "f2")):
            conn.execute("INSERT INTO imported_chats (num, id, project_id, file_id, attempt,"
                          " state, name, platform, imported_by, created_at) VALUES"
                          " (?, ?, 'p1', ?, 1, 'hidden', 'Old', 'whatsapp', 'u1',"
                          " '2024-01-01T00:00:00Z')",
                          (num, f"c{num}", file_id))
            conn.executemany("INSERT INTO chat_lines (key, time, author, text, kind)"
                             " VALUES (?, ?, ?, ?, 'message')",
                             [((num << 32) | 1, 1_700_000_000_000, "Ann", "stored before"),
                              ((num << 32) | 2, 1_700_000_060_000, "Bob", "stored too")])
    s = await SqliteStore.open(path)
    try:
        later = datetime(2024, 1, 1, tzinfo=UTC)
        assert await s.chats.add_lines("c1", 1, 3, [message_row(ParsedMessage(
            time=later, author="Ann", text="added after"))])
        [with_batch] = await s.chats.publish_chats("f1", 1)
        [at_publish] = await s.chats.publish_chats("f2", 1)
        assert with_batch.message_count == 3 and at_publish.message_count == 2
        assert [(p.name, p.messages) for p in with_batch.participants] == [("Ann", 2),
                                                                          ("Bob", 1)]
        assert with_batch.last_time == later
        hits = (await s.chats.search("p1", "stored")).items
        assert sorted(h.chat_id for h in hits) == ["c1", "c1", "c2", "c2"]
        assert len((await s.chats.list_lines("c1", author="Ann")).items) == 2
        assert await s.chats.activity("c2", bucket="day") == [("2023-11-14", 2)]
    finally:
        await s.close()
