"""TableRepo and TickRepo contract: every backend behaves the same.

Expected orders and filter results are written out as SQLite computes them (NULL lowest,
booleans compare as 0/1, numbers below text, ASCII-only case folding in ``contains``).
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from store.base import Column, Row, RowFilter, Table
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id, utcnow

U1, U2 = "user-one", "user-two"
COLUMNS = (Column("name"), Column("n", "number"), Column("ok", "bool"),
           Column("key", "text", secret=True))
ODD = ["a.b", "$x", "with space", "ünï €", "%2E", "a.$b%", "."]


async def make_table(store, project_id: str | None = None, name: str = "t",
                     columns=COLUMNS) -> Table:
    return await store.tables.create_table(project_id=project_id or new_id(), name=name,
                                           columns=columns, created_by=U1)


async def tick():
    """Let the millisecond clock move on (timestamps are kept to the millisecond)."""
    await asyncio.sleep(0.005)


async def every_page(store, table_id: str, limit: int, **kw) -> list[Row]:
    out, cursor = [], None
    while True:
        page = await store.tables.list_rows(table_id, cursor=cursor, limit=limit, **kw)
        assert len(page.items) <= limit
        out += page.items
        if page.next_cursor is None:
            return out
        assert isinstance(page.next_cursor, str)
        cursor = page.next_cursor


def ids(rows) -> list[str]:
    return [r.id for r in rows]


# -- tables -----------------------------------------------------------------------------

async def test_create_get_list_tables(store):
    pid = new_id()
    t = await make_table(store, pid, "brokers")
    assert isinstance(t, Table)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"
    assert (t.project_id, t.name, t.columns, t.created_by) == (pid, "brokers", COLUMNS, U1)
    assert t.created_at == t.updated_at and t.created_at.utcoffset() == timedelta(0)
    assert t.has_secrets and t.column("n") == Column("n", "number")
    assert await store.tables.get_table(t.id) == t
    assert await store.tables.get_table(new_id()) is None
    second = await make_table(store, pid, "second")
    await make_table(store, new_id(), "brokers")  # the name is per project
    assert await store.tables.list_tables(pid) == [t, second]
    assert await store.tables.list_tables(new_id()) == []


async def test_duplicate_name_in_a_project_conflicts(store):
    pid = new_id()
    t = await make_table(store, pid, "same")
    with pytest.raises(Conflict):
        await make_table(store, pid, "same")
    assert await store.tables.list_tables(pid) == [t]


async def test_rename(store):
    pid = new_id()
    t = await make_table(store, pid, "a")
    await make_table(store, pid, "taken")
    await tick()
    r = await store.tables.rename_table(t.id, "b")
    assert r.name == "b" and r.updated_at > t.updated_at and r.created_at == t.created_at
    assert await store.tables.get_table(t.id) == r
    assert (await store.tables.rename_table(t.id, "b")).name == "b"  # its own name: fine
    with pytest.raises(Conflict):
        await store.tables.rename_table(t.id, "taken")
    with pytest.raises(NotFound):
        await store.tables.rename_table(new_id(), "c")
    assert (await store.tables.get_table(t.id)).name == "b"


async def test_delete_table_takes_rows_and_history(store):
    t = await make_table(store)
    other = await make_table(store)
    [row] = await store.tables.add_rows(t.id, [{"name": "x"}], U1)
    [kept] = await store.tables.add_rows(other.id, [{"name": "y"}], U1)
    assert await store.tables.delete_table(t.id) is True
    assert await store.tables.delete_table(t.id) is False
    assert await store.tables.get_table(t.id) is None
    assert await store.tables.get_row(t.id, row.id) is None
    assert await store.tables.count_rows(t.id) == 0
    assert await store.tables.row_history(t.id, row.id) == []
    assert (await store.tables.table_history(t.id)).items == []
    with pytest.raises(NotFound):
        await store.tables.add_rows(t.id, [{"name": "z"}], U1)
    assert await store.tables.get_row(other.id, kept.id) == kept


async def test_delete_project_tables(store):
    pid = new_id()
    a, b = await make_table(store, pid, "a"), await make_table(store, pid, "b")
    other = await make_table(store, new_id(), "a")
    [row] = await store.tables.add_rows(a.id, [{"name": "x"}], U1)
    assert await store.tables.delete_project_tables(pid) == 2
    assert await store.tables.list_tables(pid) == []
    assert await store.tables.get_row(a.id, row.id) is None
    assert await store.tables.row_history(a.id, row.id) == []
    assert await store.tables.get_table(b.id) is None
    assert await store.tables.get_table(other.id) == other
    assert await store.tables.delete_project_tables(pid) == 0


# -- rows -------------------------------------------------------------------------------

async def test_add_rows_keeps_the_batch_order(store):
    t = await make_table(store)
    batch = [{"name": f"r{i}", "n": i, "ok": i % 2 == 0, "key": None} for i in range(50)]
    rows = await store.tables.add_rows(t.id, batch, U2, op="import")
    assert [r.values for r in rows] == batch
    assert ids(rows) == sorted(ids(rows)) and len(set(ids(rows))) == 50
    assert all((r.version, r.author_id, r.updated_by, r.table_id) == (1, U2, U2, t.id)
               for r in rows)
    assert ids((await store.tables.list_rows(t.id, limit=100)).items) == ids(rows) and \
        await store.tables.count_rows(t.id) == 50
    assert await store.tables.get_row(t.id, rows[7].id) == rows[7]
    assert await store.tables.get_row(new_id(), rows[7].id) is None  # wrong table
    history = (await store.tables.table_history(t.id, limit=100)).items
    assert [c.row_id for c in reversed(history)] == ids(rows)
    assert {(c.op, c.version, c.before, c.user_id, c.author_id) for c in history} == \
        {("import", 1, None, U2, U2)}
    assert [c.after for c in reversed(history)] == batch


async def test_add_rows_to_a_missing_table(store):
    with pytest.raises(NotFound):
        await store.tables.add_rows(new_id(), [{"name": "x"}], U1)
    with pytest.raises(NotFound):
        await store.tables.add_rows(new_id(), [], U1)
    assert await store.tables.add_rows((await make_table(store)).id, [], U1) == []


async def test_update_merges_and_checks_the_version(store):
    t = await make_table(store)
    [row] = await store.tables.add_rows(t.id, [{"name": "ana", "n": 1, "ok": True}], U1)
    await tick()
    up = await store.tables.update_row(t.id, row.id, expected_version=1,
                                       values={"n": 2.5, "ok": None}, user_id=U2)
    assert up.values == {"name": "ana", "n": 2.5, "ok": None}
    assert (up.version, up.author_id, up.updated_by) == (2, U1, U2)
    assert up.created_at == row.created_at and up.updated_at > row.updated_at
    assert await store.tables.get_row(t.id, row.id) == up
    with pytest.raises(Conflict) as stale:
        await store.tables.update_row(t.id, row.id, expected_version=1, values={"n": 9},
                                      user_id=U1)
    assert stale.value.details == {"version": 2}
    with pytest.raises(NotFound):
        await store.tables.update_row(t.id, new_id(), expected_version=1, values={},
                                      user_id=U1)
    with pytest.raises(NotFound):
        await store.tables.update_row(new_id(), row.id, expected_version=2, values={},
                                      user_id=U1)
    assert await store.tables.get_row(t.id, row.id) == up
    last = (await store.tables.row_history(t.id, row.id))[-1]
    assert (last.op, last.version, last.user_id, last.author_id) == ("update", 2, U2, U1)
    assert (last.before, last.after) == (row.values, up.values)


async def test_delete_checks_the_version_and_returns_the_row(store):
    t = await make_table(store)
    [row] = await store.tables.add_rows(t.id, [{"name": "x"}], U1)
    with pytest.raises(Conflict):
        await store.tables.delete_row(t.id, row.id, expected_version=2, user_id=U2)
    assert await store.tables.get_row(t.id, row.id) == row
    assert await store.tables.delete_row(t.id, row.id, expected_version=1, user_id=U2) == row
    assert await store.tables.get_row(t.id, row.id) is None
    with pytest.raises(NotFound):
        await store.tables.delete_row(t.id, row.id, expected_version=None, user_id=U2)
    [other] = await store.tables.add_rows(t.id, [{"name": "y"}], U1)
    await store.tables.update_row(t.id, other.id, expected_version=1, values={"n": 1},
                                  user_id=U1)
    gone = await store.tables.delete_row(t.id, other.id, expected_version=None, user_id=U2)
    assert gone.version == 2 and gone.values == {"name": "y", "n": 1}
    last = (await store.tables.row_history(t.id, other.id))[-1]
    assert (last.op, last.version, last.before, last.after, last.user_id) == \
        ("delete", 3, gone.values, None, U2)
    assert await store.tables.count_rows(t.id) == 0


async def test_concurrent_updates_on_one_version_let_exactly_one_through(store):
    t = await make_table(store)
    [row] = await store.tables.add_rows(t.id, [{"name": "x", "n": 0}], U1)

    async def write(i):
        return await store.tables.update_row(t.id, row.id, expected_version=1,
                                             values={"n": i}, user_id=f"w{i}")

    results = await asyncio.gather(*(write(i) for i in range(8)), return_exceptions=True)
    won = [r for r in results if isinstance(r, Row)]
    assert len(won) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, Row))
    assert await store.tables.get_row(t.id, row.id) == won[0]
    history = await store.tables.row_history(t.id, row.id)
    assert [(c.op, c.version) for c in history] == [("add", 1), ("update", 2)]
    assert history[-1].after == won[0].values


async def test_concurrent_delete_and_update_on_one_version(store):
    t = await make_table(store)
    [row] = await store.tables.add_rows(t.id, [{"name": "x"}], U1)
    results = await asyncio.gather(
        store.tables.update_row(t.id, row.id, expected_version=1, values={"n": 1}, user_id=U1),
        store.tables.delete_row(t.id, row.id, expected_version=1, user_id=U2),
        return_exceptions=True)
    assert sum(isinstance(r, Row) for r in results) == 1, results
    ops = [c.op for c in await store.tables.row_history(t.id, row.id)]
    assert ops in (["add", "update"], ["add", "delete"])


async def test_seq_grows_with_each_rows_versions_under_concurrent_writers(store):
    t = await make_table(store)
    rows = await store.tables.add_rows(t.id, [{"n": 0} for _ in range(4)], U1)

    async def bump(row, times):
        version = 1
        for i in range(times):
            version = (await store.tables.update_row(
                t.id, row.id, expected_version=version, values={"n": i + 1}, user_id=U1)).version

    await asyncio.gather(*(bump(r, 5) for r in rows),
                         store.tables.add_rows(t.id, [{"n": 9}] * 3, U2))
    history = (await store.tables.table_history(t.id, limit=500)).items
    seqs = [c.seq for c in history]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == 4 + 20 + 3
    for r in rows:
        versions = [c.version for c in reversed(history) if c.row_id == r.id]
        assert versions == [1, 2, 3, 4, 5, 6]


# -- list_rows: sort, paging, filters ---------------------------------------------------

async def numbered(store, values: list) -> tuple[Table, list[Row]]:
    """A table whose rows carry ``values`` in column n (None: null, ... : no key at all)."""
    t = await make_table(store)
    batch = [{"name": f"r{i}"} if v is ... else {"name": f"r{i}", "n": v}
             for i, v in enumerate(values)]
    return t, await store.tables.add_rows(t.id, batch, U1)


async def test_sort_puts_nulls_lowest(store):
    t, rows = await numbered(store, [3, None, 1.5, ..., -2, 3, None, 10])
    by = {r.values["name"]: r.id for r in rows}
    asc = ["r1", "r3", "r6", "r4", "r2", "r0", "r5", "r7"]  # nulls (by id), then values
    page = await store.tables.list_rows(t.id, sort="n")
    assert ids(page.items) == [by[n] for n in asc] and page.next_cursor is None
    page = await store.tables.list_rows(t.id, sort="n", descending=True)
    assert ids(page.items) == [by[n] for n in reversed(asc)]
    assert ids((await store.tables.list_rows(t.id, descending=True)).items) == \
        list(reversed(ids(rows)))


@pytest.mark.parametrize("descending", [False, True])
async def test_keyset_paging_across_equal_values_and_nulls(store, descending):
    values = [2, None, 1, 2, ..., 2, 1, None, 3, 2, None, 1, 3, ...]
    t, rows = await numbered(store, values)
    full = (await store.tables.list_rows(t.id, sort="n", descending=descending)).items
    assert len(full) == len(values)
    for limit in (1, 2, 3, 5):
        assert ids(await every_page(store, t.id, limit, sort="n", descending=descending)) == \
            ids(full), limit
        assert ids(await every_page(store, t.id, limit, descending=descending)) == \
            (list(reversed(ids(rows))) if descending else ids(rows))


async def test_paging_a_text_column_with_filters(store):
    t = await make_table(store)
    names = ["b", "a", None, "b", "c", "a", "b", None, "B"]
    rows = await store.tables.add_rows(t.id, [{"name": v, "n": i} for i, v in
                                               enumerate(names)], U1)
    wanted = [r for r in rows if r.values["n"] >= 2]
    order = sorted(wanted, key=lambda r: (r.values["name"] is not None,
                                          r.values["name"] or "", r.id))
    got = await every_page(store, t.id, 2, sort="name",
                           filters=[RowFilter("n", "gte", 2)])
    assert ids(got) == ids(order)
    got = await every_page(store, t.id, 2, sort="name", descending=True,
                           filters=[RowFilter("n", "gte", 2)])
    assert ids(got) == list(reversed(ids(order)))


async def test_a_cursor_from_elsewhere_is_refused(store):
    t, _ = await numbered(store, [1, 2])
    with pytest.raises(BadRequest):
        await store.tables.list_rows(t.id, cursor="not a cursor", sort="n")


async def matching(store, table_id: str, *filters: RowFilter) -> set[str]:
    return {r.values["name"] for r in (await store.tables.list_rows(
        table_id, filters=list(filters), limit=1000)).items}


async def test_each_filter_op_on_numbers(store):
    t, _ = await numbered(store, [1, 2, 2.5, None, ..., -3, 12, 0])
    # r0=1 r1=2 r2=2.5 r3=null r4=missing r5=-3 r6=12 r7=0
    n = "n"
    assert await matching(store, t.id, RowFilter(n, "eq", 2)) == {"r1"}
    assert await matching(store, t.id, RowFilter(n, "eq", 2.0)) == {"r1"}
    assert await matching(store, t.id, RowFilter(n, "ne", 2)) == {"r0", "r2", "r5", "r6", "r7"}
    assert await matching(store, t.id, RowFilter(n, "lt", 2)) == {"r0", "r5", "r7"}
    assert await matching(store, t.id, RowFilter(n, "lte", 2)) == {"r0", "r1", "r5", "r7"}
    assert await matching(store, t.id, RowFilter(n, "gt", 2)) == {"r2", "r6"}
    assert await matching(store, t.id, RowFilter(n, "gte", 2.5)) == {"r2", "r6"}
    assert await matching(store, t.id, RowFilter(n, "contains", "2")) == {"r1", "r2", "r6"}
    assert await matching(store, t.id, RowFilter(n, "contains", ".5")) == {"r2"}
    assert await matching(store, t.id, RowFilter(n, "contains", "")) == \
        {"r0", "r1", "r2", "r5", "r6", "r7"}
    # Null never compares: not even equal to null, and "ne" leaves nulls out.
    assert await matching(store, t.id, RowFilter(n, "eq", None)) == set()
    assert await matching(store, t.id, RowFilter(n, "ne", None)) == set()
    # Ranges combine (AND).
    assert await matching(store, t.id, RowFilter(n, "gt", 0), RowFilter(n, "lt", 12)) == \
        {"r0", "r1", "r2"}


async def test_number_text_for_contains_is_sqlites(store):
    t, _ = await numbered(store, [3.0, 1e20, 0.1 + 0.2, 1 / 3, 2.5e15, 123456789012, -0.5])
    assert await matching(store, t.id, RowFilter("n", "contains", "3.0")) == {"r0"}
    assert await matching(store, t.id, RowFilter("n", "contains", "1.0E+20")) == {"r1"}
    assert await matching(store, t.id, RowFilter("n", "contains", "0.3")) == {"r2", "r3"}
    assert await matching(store, t.id, RowFilter("n", "contains", "333333333333333")) == {"r3"}
    assert await matching(store, t.id, RowFilter("n", "contains", "e+15")) == {"r4"}
    assert await matching(store, t.id, RowFilter("n", "contains", "9012")) == {"r5"}
    assert await matching(store, t.id, RowFilter("n", "contains", "-")) == {"r6"}


async def test_each_filter_op_on_text(store):
    t = await make_table(store)
    await store.tables.add_rows(t.id, [
        {"name": "r0", "key": "Alpha"}, {"name": "r1", "key": "alphabet"},
        {"name": "r2", "key": "beta"}, {"name": "r3", "key": None}, {"name": "r4"},
        {"name": "r5", "key": "ÉCOLE"}, {"name": "r6", "key": "école"}, {"name": "r7", "key": ""},
        {"name": "r8", "key": "a.b*c(d)"}], U1)
    k = "key"
    assert await matching(store, t.id, RowFilter(k, "eq", "alpha")) == set()  # case-sensitive
    assert await matching(store, t.id, RowFilter(k, "eq", "Alpha")) == {"r0"}
    assert await matching(store, t.id, RowFilter(k, "ne", "beta")) == \
        {"r0", "r1", "r5", "r6", "r7", "r8"}
    # Binary order: "A" < "a" < "b" < "É" < "é".
    assert await matching(store, t.id, RowFilter(k, "lt", "alpha")) == {"r0", "r7", "r8"}
    assert await matching(store, t.id, RowFilter(k, "lte", "alphabet")) == \
        {"r0", "r1", "r7", "r8"}
    assert await matching(store, t.id, RowFilter(k, "gt", "beta")) == {"r5", "r6"}
    assert await matching(store, t.id, RowFilter(k, "gte", "beta")) == {"r2", "r5", "r6"}
    assert await matching(store, t.id, RowFilter(k, "contains", "ALPH")) == {"r0", "r1"}
    assert await matching(store, t.id, RowFilter(k, "contains", "b*c(")) == {"r8"}
    assert await matching(store, t.id, RowFilter(k, "contains", ".")) == {"r8"}
    # SQLite's lower() folds ASCII only: É and é are different letters to it.
    assert await matching(store, t.id, RowFilter(k, "contains", "écol")) == {"r6"}
    assert await matching(store, t.id, RowFilter(k, "contains", "ÉCOL")) == {"r5"}
    assert await matching(store, t.id, RowFilter(k, "contains", "Cole")) == {"r5", "r6"}


async def test_filters_across_types_follow_sqlite(store):
    t = await make_table(store)
    await store.tables.add_rows(t.id, [
        {"name": "r0", "n": 5, "ok": True}, {"name": "r1", "n": -1, "ok": False},
        {"name": "r2", "n": None, "ok": None}], U1)
    # Booleans are 0 and 1.
    assert await matching(store, t.id, RowFilter("ok", "eq", True)) == {"r0"}
    assert await matching(store, t.id, RowFilter("ok", "eq", 1)) == {"r0"}
    assert await matching(store, t.id, RowFilter("ok", "lt", 1)) == {"r1"}
    assert await matching(store, t.id, RowFilter("ok", "ne", False)) == {"r0"}
    assert await matching(store, t.id, RowFilter("ok", "contains", "1")) == {"r0"}
    assert await matching(store, t.id, RowFilter("ok", "contains", "true")) == set()
    assert await matching(store, t.id, RowFilter("n", "gte", True)) == {"r0"}
    # Any number is below any text.
    assert await matching(store, t.id, RowFilter("n", "lt", "0")) == {"r0", "r1"}
    assert await matching(store, t.id, RowFilter("n", "gt", "0")) == set()
    assert await matching(store, t.id, RowFilter("n", "ne", "5")) == {"r0", "r1"}
    assert await matching(store, t.id, RowFilter("n", "eq", "5")) == set()
    assert await matching(store, t.id, RowFilter("name", "gt", 100)) == {"r0", "r1", "r2"}


async def test_bool_column_sorts_false_before_true(store):
    t = await make_table(store)
    rows = await store.tables.add_rows(t.id, [{"ok": v} for v in
                                              (True, None, False, True, False)], U1)
    want = [rows[1], rows[2], rows[4], rows[0], rows[3]]
    for limit in (1, 2, 10):
        assert ids(await every_page(store, t.id, limit, sort="ok")) == ids(want)
        assert ids(await every_page(store, t.id, limit, sort="ok", descending=True)) == \
            list(reversed(ids(want)))


async def test_any_column_name_works(store):
    columns = tuple(Column(n, "number") for n in ODD) + (Column("name"),)
    t = await make_table(store, columns=columns)
    assert (await store.tables.get_table(t.id)).columns == columns
    batch = [{**{n: (i * 7 + j) % 5 for j, n in enumerate(ODD)}, "name": f"r{i}"}
             for i in range(6)]
    batch.append({"name": "r6"})  # every odd column missing
    rows = await store.tables.add_rows(t.id, batch, U1)
    assert [r.values for r in rows] == batch
    assert await store.tables.get_row(t.id, rows[0].id) == rows[0]
    for col in ODD:
        def key(r, col=col):
            v = r.values.get(col)
            return (v is not None, v or 0, r.id)

        want = ids(sorted(rows, key=key))
        assert ids(await every_page(store, t.id, 2, sort=col)) == want, col
        assert ids(await every_page(store, t.id, 2, sort=col, descending=True)) == \
            list(reversed(want)), col
        assert await matching(store, t.id, RowFilter(col, "eq", 3)) == \
            {r.values["name"] for r in rows if r.values.get(col) == 3}, col
        assert await matching(store, t.id, RowFilter(col, "contains", "4")) == \
            {r.values["name"] for r in rows if r.values.get(col) == 4}, col
    up = await store.tables.update_row(t.id, rows[0].id, expected_version=1,
                                       values={"$x": 99, "a.b": None}, user_id=U1)
    assert up.values["$x"] == 99 and up.values["a.b"] is None
    assert await store.tables.get_row(t.id, rows[0].id) == up
    change = (await store.tables.row_history(t.id, rows[0].id))[-1]
    assert change.before == batch[0] and change.after == up.values


async def test_values_round_trip(store):
    t = await make_table(store, columns=(Column("v"),))
    values = [None, True, False, 0, -7, 2 ** 53, 1.25, "", "naïve ☃", "x" * 10_000,
              "2024-05-01T10:00:00+00:00"]
    rows = await store.tables.add_rows(t.id, [{"v": v} for v in values], U1)
    got = [(await store.tables.get_row(t.id, r.id)).values["v"] for r in rows]
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


# -- history, rows_at, restore ----------------------------------------------------------

async def test_history_order_and_paging(store):
    t = await make_table(store)
    a, b = await store.tables.add_rows(t.id, [{"name": "a"}, {"name": "b"}], U1)
    await store.tables.update_row(t.id, a.id, expected_version=1, values={"n": 1}, user_id=U2)
    await store.tables.update_row(t.id, b.id, expected_version=1, values={"n": 2}, user_id=U2)
    await store.tables.update_row(t.id, a.id, expected_version=2, values={"n": 3}, user_id=U1)
    await store.tables.delete_row(t.id, b.id, expected_version=2, user_id=U1)
    history_a = await store.tables.row_history(t.id, a.id)
    assert [(c.op, c.version) for c in history_a] == [("add", 1), ("update", 2), ("update", 3)]
    assert [c.after["n"] if "n" in c.after else None for c in history_a] == [None, 1, 3]
    assert history_a[1].before == {"name": "a"} and history_a[2].before == {"name": "a", "n": 1}
    assert all(c.table_id == t.id and c.row_id == a.id for c in history_a)
    assert all(c.at.utcoffset() == timedelta(0) for c in history_a)
    assert await store.tables.row_history(t.id, new_id()) == []
    full = (await store.tables.table_history(t.id)).items
    assert [(c.row_id, c.op) for c in full] == [
        (b.id, "delete"), (a.id, "update"), (b.id, "update"), (a.id, "update"),
        (b.id, "add"), (a.id, "add")]
    assert [c.seq for c in full] == sorted((c.seq for c in full), reverse=True)
    seen, cursor = [], None
    while True:
        page = await store.tables.table_history(t.id, cursor=cursor, limit=4)
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == full


async def test_rows_at_and_restore(store):
    t = await make_table(store)
    keep, change, drop = await store.tables.add_rows(
        t.id, [{"name": "keep"}, {"name": "change", "n": 1}, {"name": "drop"}], U1)
    await store.tables.update_row(t.id, change.id, expected_version=1, values={"n": 2},
                                  user_id=U1)
    await tick()
    then = utcnow()
    await tick()
    await store.tables.update_row(t.id, change.id, expected_version=2, values={"n": 3},
                                  user_id=U2)
    await store.tables.delete_row(t.id, drop.id, expected_version=1, user_id=U2)
    [late] = await store.tables.add_rows(t.id, [{"name": "late"}], U2)

    past = await store.tables.rows_at(t.id, then)
    assert set(past) == {keep.id, change.id, drop.id}
    assert past[change.id].after == {"name": "change", "n": 2} and past[change.id].version == 2
    assert past[drop.id].after == {"name": "drop"}
    now_ = await store.tables.rows_at(t.id, utcnow())
    assert set(now_) == {keep.id, change.id, late.id}  # deleted rows are not there
    assert await store.tables.rows_at(t.id, then - timedelta(days=1)) == {}

    target = {rid: c.after for rid, c in past.items()}
    target[late.id] = None
    target[new_id()] = {"name": "never existed"}  # not a row of this table: skipped
    written, deleted = await store.tables.restore_rows(t.id, target, U1)
    assert sorted(ids(written)) == sorted([change.id, drop.id])  # keep is unchanged
    assert ids(deleted) == [late.id] and deleted[0].values == {"name": "late"}
    again = {r.id: r for r in written}
    assert (again[change.id].values, again[change.id].version) == ({"name": "change", "n": 2}, 4)
    assert (again[drop.id].values, again[drop.id].version) == ({"name": "drop"}, 3)
    assert again[drop.id].author_id == U1 and again[drop.id].updated_by == U1
    assert again[change.id].created_at == change.created_at
    for row in written:
        assert await store.tables.get_row(t.id, row.id) == row
    assert await store.tables.get_row(t.id, late.id) is None
    assert await store.tables.get_row(t.id, keep.id) == keep
    assert [(c.op, c.version, c.before, c.after) for c in
            (await store.tables.row_history(t.id, drop.id))[-2:]] == [
        ("delete", 2, {"name": "drop"}, None), ("restore", 3, None, {"name": "drop"})]
    assert (await store.tables.row_history(t.id, late.id))[-1].op == "restore"
    # Versions continue from the restored ones, and restoring again changes nothing.
    up = await store.tables.update_row(t.id, drop.id, expected_version=3, values={"n": 5},
                                       user_id=U2)
    assert up.version == 4
    assert await store.tables.restore_rows(t.id, {keep.id: keep.values}, U1) == ([], [])


# -- ticks ------------------------------------------------------------------------------

async def test_ticks_newest_first(store):
    assert await store.ticks.recent_ticks() == []
    base = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    for i in range(25):
        await store.ticks.add_tick(100 + i / 4, base + timedelta(seconds=i), f"i{i % 2}")
    recent = await store.ticks.recent_ticks()
    assert len(recent) == 20
    assert recent[0] == (base + timedelta(seconds=24), 106.0, "i0")
    assert [v for _, v, _ in recent] == [100 + i / 4 for i in range(24, 4, -1)]
    assert [at for at, _, _ in await store.ticks.recent_ticks(3)] == \
        [base + timedelta(seconds=s) for s in (24, 23, 22)]


async def test_filter_and_cursor_values_are_scalars(store, backend, request):
    t, _ = await numbered(store, [1, 2])
    with pytest.raises(BadRequest):
        await store.tables.list_rows(t.id, filters=[RowFilter("n", "eq", [1])])
    cursor = base64.urlsafe_b64encode(json.dumps([{"a": 1}, new_id()]).encode()).decode()
    with pytest.raises(BadRequest):
        await store.tables.list_rows(t.id, sort="n", cursor=cursor)
