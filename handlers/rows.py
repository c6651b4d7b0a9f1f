"""table:rows and row:* — reading, writing and locking rows.

A write by the lock holder carries ``lockToken``; a write without one is allowed only while
nobody else holds the row. Either way it carries the ``version`` it was based on and the
store refuses it if the row moved on (``conflict``), so a stale holder never overwrites.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from handlers.base import Int, Payload, SafeInt, event
from handlers.scopes import Table
from handlers.table_common import (
    change_view,
    check_values,
    push_row,
    row_for,
    row_view,
    seal,
    sees_clear,
)
from services.locks import holder_view
from store.base import RowFilter
from store.errors import EventError, Forbidden, Locked, NotFound
from store.query import ROW_CURSOR_TEXT

Id = Field(min_length=1, max_length=64)
Values = Field(max_length=200)


class FilterIn(Payload):
    column: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "ne", "contains", "lt", "lte", "gt", "gte"] = "eq"
    value: str | bool | SafeInt | float | None = None


class RowsPayload(Payload):
    tableId: str = Id
    # the last row's sort value travels in it: as long as a cell may be
    cursor: str | None = Field(default=None, max_length=ROW_CURSOR_TEXT)
    limit: int = Int(100, ge=1, le=1000)
    sort: str | None = Field(default=None, max_length=100)
    order: Literal["asc", "desc"] = "asc"
    filter: list[FilterIn] = Field(default_factory=list, max_length=20)


class AddPayload(Payload):
    tableId: str = Id
    values: dict[str, JsonValue] = Values


class UpdatePayload(Payload):
    tableId: str = Id
    rowId: str = Id
    version: int = Int(ge=1)
    lockToken: str | None = Field(default=None, max_length=100)
    values: dict[str, JsonValue] = Values


class DeletePayload(Payload):
    tableId: str = Id
    rowId: str = Id
    version: int | None = Int(None, ge=1)
    lockToken: str | None = Field(default=None, max_length=100)


class RowPayload(Payload):
    tableId: str = Id
    rowId: str = Id


class UnlockPayload(RowPayload):
    force: bool = False


class HeartbeatPayload(RowPayload):
    lockToken: str = Field(min_length=1, max_length=100)


class RestorePayload(RowPayload):
    version: int = Int(ge=1)


@event("table:rows", RowsPayload, scope=Table("tableId", "viewer"),
       ack="{items: [row], nextCursor}")
async def on_rows(ctx, p: RowsPayload):
    """A page of rows, sorted by any non-secret column and filtered; keyset cursor paging."""
    table = ctx.resource
    for name in [p.sort] * bool(p.sort) + [f.column for f in p.filter]:
        column = table.column(name)
        if column is None:
            raise EventError("bad_request", f"no column named {name!r}", {"column": name})
        if column.secret:
            raise EventError("bad_request", f"column {name!r} is secret: it cannot be sorted "
                             "or filtered", {"column": name})
    filters = [RowFilter(f.column, f.op, f.value) for f in p.filter]
    page = await ctx.store.tables.list_rows(table.id, cursor=p.cursor, limit=p.limit,
                                            sort=p.sort, descending=p.order == "desc",
                                            filters=filters)
    role = ctx.project_role
    return {"items": [row_view(ctx.services, table, r, sees_clear(role, ctx.user_id, r.author_id))
                      for r in page.items], "nextCursor": page.next_cursor}


@event("row:get", RowPayload, scope=Table("tableId", "viewer"), ack="{row, lock}")
async def on_get(ctx, p: RowPayload):
    """One row as it is now, with who holds its lock (e.g. to reload after a conflict)."""
    table = ctx.resource
    row = await row_for(ctx, table, p.rowId)
    holder = await ctx.services.locks.holder(table.id, row.id)
    return {"row": row_view(ctx.services, table, row,
                            sees_clear(ctx.project_role, ctx.user_id, row.author_id)),
            "lock": holder_view(holder) if holder else None}


@event("row:add", AddPayload, scope=Table("tableId", "editor"), ack="row", emits=("row:added",))
async def on_add(ctx, p: AddPayload):
    """Add a row (editors); missing columns are null."""
    table = ctx.resource
    values = seal(ctx, table, check_values(table, p.values, partial=False))
    [row] = await ctx.store.tables.add_rows(table.id, [values], ctx.user_id)
    await push_row(ctx, table, "row:added", row)
    return row_view(ctx.services, table, row, True)


@event("row:update", UpdatePayload, scope=Table("tableId", "editor"),
       ack="row", emits=("row:updated",))
async def on_update(ctx, p: UpdatePayload):
    """Change some values of a row, based on ``version``; the holder sends its lockToken."""
    table = ctx.resource
    values = seal(ctx, table, check_values(table, p.values, partial=True))
    locks = ctx.services.locks
    await locks.check_write(table.id, p.rowId, ctx.user_id, p.lockToken)
    row = await ctx.store.tables.update_row(table.id, p.rowId, expected_version=p.version,
                                            values=values, user_id=ctx.user_id)
    if p.lockToken:
        await locks.touch(table.id, p.rowId, p.lockToken)
    await push_row(ctx, table, "row:updated", row)
    return row_view(ctx.services, table, row, sees_clear(ctx.project_role, ctx.user_id,
                                                         row.author_id))


@event("row:delete", DeletePayload, scope=Table("tableId", "editor"),
       ack="{id}", emits=("row:deleted", "row:unlocked"))
async def on_delete(ctx, p: DeletePayload):
    """Delete a row (editors) unless someone else holds its lock; its lock ends with it."""
    table = ctx.resource
    await ctx.services.locks.check_write(table.id, p.rowId, ctx.user_id, p.lockToken)
    await ctx.store.tables.delete_row(table.id, p.rowId, expected_version=p.version,
                                      user_id=ctx.user_id)
    await ctx.services.locks.force_release(table.id, p.rowId, "deleted")
    await ctx.push_project(table.project_id, "row:deleted",
                           {"tableId": table.id, "rowId": p.rowId}, skip_self=True)
    return {"id": p.rowId}


@event("row:lock", RowPayload, scope=Table("tableId", "editor"),
       ack="{lockToken, expiresAt}", emits=("row:locked",))
async def on_lock(ctx, p: RowPayload):
    """Take the row's edit lock; ``locked`` names the holder, ``rate_limited`` during your
    cooldown. Locking a row you hold already (e.g. after a reconnect) reclaims it."""
    table = ctx.resource
    await row_for(ctx, table, p.rowId)
    info = await ctx.services.locks.acquire(
        project_id=table.project_id, table_id=table.id, row_id=p.rowId, user_id=ctx.user_id,
        username=ctx.state.username, sid=ctx.sid)
    return {"lockToken": info["token"], "expiresAt": holder_view(info)["expiresAt"]}


@event("row:unlock", UnlockPayload, scope=Table("tableId", "editor"),
       ack="{released}", emits=("row:unlocked",))
async def on_unlock(ctx, p: UnlockPayload):
    """Release your lock; project owners may break anyone's with ``force``."""
    table = ctx.resource
    locks = ctx.services.locks
    if p.force:
        if ctx.project_role != "owner":
            raise Forbidden("only project owners can break another user's lock")
        holder = await locks.holder(table.id, p.rowId)
        reason = "released" if holder and holder["userId"] == ctx.user_id else "owner_override"
        info = await locks.force_release(table.id, p.rowId, reason)
    else:
        info = await locks.release_by(table.id, p.rowId, ctx.user_id)
    return {"released": info is not None}


@event("row:heartbeat", HeartbeatPayload, scope=Table("tableId", "editor"), ack="{expiresAt}")
async def on_heartbeat(ctx, p: HeartbeatPayload):
    """Keep your lock while editing without saving (moves the edit timeout)."""
    table = ctx.resource
    info = await ctx.services.locks.heartbeat(table.id, p.rowId, p.lockToken)
    return {"expiresAt": holder_view(info)["expiresAt"]}


@event("row:history", RowPayload, scope=Table("tableId", "viewer"), ack="[change]")
async def on_history(ctx, p: RowPayload):
    """Every version of one row, oldest first (secret columns masked unless you may see
    them)."""
    table = ctx.resource
    changes = await ctx.store.tables.row_history(table.id, p.rowId)
    if not changes:
        raise NotFound("row not found")
    return [change_view(ctx.services, table, c,
                        sees_clear(ctx.project_role, ctx.user_id, c.author_id)) for c in changes]


@event("row:restore", RestorePayload, scope=Table("tableId", "editor"),
       ack="row", emits=("row:updated",))
async def on_restore(ctx, p: RestorePayload):
    """Bring a row back to the values it had at ``version`` (re-creating it if deleted), as
    a new version."""
    table = ctx.resource
    changes = await ctx.store.tables.row_history(table.id, p.rowId)
    target = next((c for c in changes if c.version == p.version and c.after is not None), None)
    if target is None:
        raise NotFound(f"row has no version {p.version} with values")
    holder = await ctx.services.locks.holder(table.id, p.rowId)
    if holder and holder["userId"] != ctx.user_id:
        raise Locked(f"row is locked by {holder['username']}")
    written, _ = await ctx.store.tables.restore_rows(table.id, {p.rowId: target.after},
                                                     ctx.user_id)
    row = written[0] if written else await row_for(ctx, table, p.rowId)
    if written:
        await push_row(ctx, table, "row:updated", row, {"reason": "restore"})
    return row_view(ctx.services, table, row, sees_clear(ctx.project_role, ctx.user_id,
                                                         row.author_id))


EVENTS = [on_rows, on_get, on_add, on_update, on_delete, on_lock, on_unlock, on_heartbeat,
          on_history, on_restore]
