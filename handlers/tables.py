"""table:* — a project's tables: create (by event or from an uploaded CSV), list, get,
rename, delete, history and restore as of a time. Rows and locks are in ``rows.py``."""
from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field, field_validator

from handlers.base import Cursor, Int, Payload, Time, event
from handlers.files import file_for
from handlers.scopes import Project, Table
from handlers.table_common import change_view, push_row, reveal, seal, sees_clear, table_view
from ingest import csv_tables
from services.locks import holder_view
from services.quotas import spend_guest_quota
from store.base import Column
from store.errors import EventError

Id = Field(min_length=1, max_length=64)
Name = Field(min_length=1, max_length=100)
MAX_COLUMNS = 200  # declared by hand; CSV imports may carry up to csv_tables.MAX_COLUMNS
IMPORT_BATCH = 2000


class ColumnIn(Payload):
    name: str = Field(min_length=1, max_length=100)
    type: Literal["text", "number", "bool", "datetime"] = "text"
    secret: bool = False


class CreatePayload(Payload):
    projectId: str = Id
    name: str = Name
    columns: list[ColumnIn] = Field(min_length=1, max_length=MAX_COLUMNS)

    @field_validator("columns")
    @classmethod
    def _unique(cls, columns: list[ColumnIn]) -> list[ColumnIn]:
        names = [c.name for c in columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
        return columns


class ProjectPayload(Payload):
    projectId: str = Id


class TablePayload(Payload):
    tableId: str = Id


class RenamePayload(Payload):
    tableId: str = Id
    name: str = Name


class ImportPayload(Payload):
    projectId: str = Id
    fileId: str = Id
    name: str | None = Field(default=None, min_length=1, max_length=100)
    secretColumns: list[str] = Field(default_factory=list, max_length=MAX_COLUMNS)
    skipBadRows: bool = False


class HistoryPayload(Payload):
    tableId: str = Id
    cursor: str | None = Cursor
    limit: int = Int(100, ge=1, le=500)


class RestorePayload(Payload):
    tableId: str = Id
    at: Time


async def _announce(ctx, event_name: str, table) -> dict:
    view = table_view(table)
    await ctx.push_project(table.project_id, event_name, {"table": view}, skip_self=True)
    return view


@event("table:create", CreatePayload, scope=Project("projectId", "editor"),
       ack="table", emits=("table:created",))
async def on_create(ctx, p: CreatePayload):
    """Create a table with typed columns (text, number, bool, datetime; optionally secret)."""
    columns = [Column(c.name, c.type, c.secret) for c in p.columns]
    table = await ctx.store.tables.create_table(project_id=p.projectId, name=p.name,
                                                columns=columns, created_by=ctx.user_id)
    return await _announce(ctx, "table:created", table)


@event("table:list", ProjectPayload, scope=Project("projectId", "viewer"),
       ack="[table]")
async def on_list(ctx, p: ProjectPayload):
    """The project's tables."""
    return [table_view(t) for t in await ctx.store.tables.list_tables(p.projectId)]


@event("table:get", TablePayload, scope=Table("tableId", "viewer"), ack="{table, rowCount, locks}")
async def on_get(ctx, p: TablePayload):
    """One table with its row count and who holds which row lock now."""
    table = ctx.resource
    locks = await ctx.services.locks.table_locks(table.id)
    return {"table": table_view(table), "rowCount": await ctx.store.tables.count_rows(table.id),
            "locks": [holder_view(info) for info in locks]}


@event("table:rename", RenamePayload, scope=Table("tableId", "editor"),
       ack="table", emits=("table:updated",))
async def on_rename(ctx, p: RenamePayload):
    """Rename a table (editors)."""
    table = await ctx.store.tables.rename_table(p.tableId, p.name)
    return await _announce(ctx, "table:updated", table)


@event("table:delete", TablePayload, scope=Table("tableId", "owner"),
       ack="{id}", emits=("table:deleted",))
async def on_delete(ctx, p: TablePayload):
    """Delete a table, its rows and history (owners)."""
    table = ctx.resource
    await ctx.services.locks.drop_table(table.id)
    await ctx.store.tables.delete_table(table.id)
    await ctx.push_project(table.project_id, "table:deleted", {"tableId": table.id},
                           skip_self=True)
    return {"id": table.id}


@event("table:import", ImportPayload, scope=Project("projectId", "editor"),
       ack="{table, rows, skipped, warnings}", emits=("table:created", "auth:quota"))
async def on_import(ctx, p: ImportPayload):
    """Make a table from an uploaded CSV: header → columns, types inferred. Rows with the
    wrong number of fields fail the import with their line numbers, unless skipBadRows.
    Spends one of a guest's imports (``forbidden`` with reason ``guest_limit`` at zero)."""
    record = await file_for(ctx.services, p.fileId, ctx.user_id, "viewer")
    if record.project_id != p.projectId:
        raise EventError("not_found", "file not found")
    store = ctx.store.tables
    async with ctx.services.blobs.local_copy(record.storage_key, ".csv") as path:
        try:
            prof = await asyncio.to_thread(csv_tables.profile, path)
        except csv_tables.CsvError as exc:
            raise EventError("bad_request", f"{record.name}: {exc.message}", exc.details) from None
        if prof.bad_count and not p.skipBadRows:
            raise EventError("bad_request",
                             f"{record.name}: {prof.bad_count} rows have the wrong number of "
                             f"fields (first at line {prof.bad_lines[0]['line']}); fix them or "
                             f"import with skipBadRows", {"badLines": prof.bad_lines,
                                                          "badCount": prof.bad_count})
        unknown = sorted(set(p.secretColumns) - set(prof.header))
        if unknown:
            raise EventError("bad_request", f"no such columns to keep secret: {unknown}")
        if ctx.state.is_guest:  # spent once the file is known to import
            await spend_guest_quota(ctx.store, ctx.gateway, ctx.user_id, "remaining_imports")
        columns = [Column(name, kind, name in p.secretColumns)
                   for name, kind in zip(prof.header, prof.types)]
        name = p.name or record.name.rsplit(".", 1)[0][:100] or "import"
        table = await store.create_table(project_id=p.projectId, name=name, columns=columns,
                                         created_by=ctx.user_id)
        try:
            batches = csv_tables.rows(path, prof, IMPORT_BATCH)
            while batch := await asyncio.to_thread(next, batches, None):
                await store.add_rows(table.id, [seal(ctx, table, v) for v in batch], ctx.user_id,
                                     op="import")
        except BaseException:
            await store.delete_table(table.id)  # no partial table is left behind
            raise
    view = await _announce(ctx, "table:created", table)
    return {"table": view, "rows": prof.rows, "warnings": prof.warnings,
            "skipped": {"count": prof.bad_count, "lines": prof.bad_lines}}


@event("table:history", HistoryPayload, scope=Table("tableId", "viewer"),
       ack="{items: [change], nextCursor}")
async def on_history(ctx, p: HistoryPayload):
    """Every change to the table, newest first, paged (secret columns masked unless you may
    see them)."""
    table = ctx.resource
    page = await ctx.store.tables.table_history(table.id, cursor=p.cursor, limit=p.limit)
    return {"items": [change_view(ctx.services, table, c,
                                  sees_clear(ctx.project_role, ctx.user_id, c.author_id))
                      for c in page.items], "nextCursor": page.next_cursor}


@event("table:restore", RestorePayload, scope=Table("tableId", "editor"), ack="{restored, deleted}",
       emits=("row:added", "row:updated", "row:deleted"))
async def on_restore(ctx, p: RestorePayload):
    """Put the whole table back as it was at ``at``, as new changes (themselves in history).
    Rows locked by someone else make it fail with ``locked``."""
    table = ctx.resource
    past = await ctx.store.tables.rows_at(table.id, p.at)
    locks = await ctx.services.locks.table_locks(table.id)
    foreign = [held for held in locks if held["userId"] != ctx.user_id]
    if foreign:
        raise EventError("locked", f"{len(foreign)} rows are locked by others",
                         {"holders": [{"rowId": h["rowId"], "username": h["username"]}
                                      for h in foreign]})
    target: dict[str, dict | None] = {rid: change.after for rid, change in past.items()}
    cursor = None
    while True:  # rows created after ``at`` go away
        page = await ctx.store.tables.list_rows(table.id, cursor=cursor, limit=1000)
        for row in page.items:
            target.setdefault(row.id, None)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    written, deleted = await ctx.store.tables.restore_rows(table.id, target, ctx.user_id)
    for row in written:
        await push_row(ctx, table, "row:updated", row, {"reason": "restore"})
    for row in deleted:
        await ctx.push_project(table.project_id, "row:deleted",
                               {"tableId": table.id, "rowId": row.id, "reason": "restore"},
                               skip_self=True)
        await ctx.services.locks.force_release(table.id, row.id, "deleted")
    return {"restored": len(written), "deleted": len(deleted)}


async def export_csv(services, table_id: str, user_id: str):
    """CSV text chunks of a whole table (REST download), secrets masked as in reads."""
    table, role = await Table("tableId", "viewer").load(services.store, user_id, table_id)
    names = [c.name for c in table.columns]

    async def records():
        cursor = None
        while True:
            page = await services.store.tables.list_rows(table.id, cursor=cursor, limit=1000)
            for row in page.items:
                values = reveal(services, table, row.values,
                                sees_clear(role, user_id, row.author_id))
                yield [values.get(n) for n in names]
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    return table, names, records()


EVENTS = [on_create, on_list, on_get, on_rename, on_delete, on_import, on_history, on_restore]
