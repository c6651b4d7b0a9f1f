"""What the table and row handlers share: access to a table, value validation against
column types, secret columns (encrypt, decrypt or mask per viewer), views and pushes."""
from __future__ import annotations

import math
from datetime import datetime

from services.crypto import mask
from services.replay import Form
from store.base import Row, RowChange, Table
from store.errors import EventError, NotFound
from store.ids import iso


async def row_for(ctx, table: Table, row_id: str) -> Row:
    row = await ctx.store.tables.get_row(table.id, row_id)
    if row is None:
        raise NotFound("row not found")
    return row


def check_values(table: Table, values: dict, *, partial: bool) -> dict:
    """Validate and normalise ``values`` against the columns; ``bad_request`` names the column."""
    out = {}
    for name, value in values.items():
        column = table.column(name)
        if column is None:
            raise EventError("bad_request", f"no column named {name!r}",
                             {"column": name, "columns": [c.name for c in table.columns]})
        out[name] = _coerce(column.name, column.type, value)
    if not partial:
        for column in table.columns:
            out.setdefault(column.name, None)
    return out


def _coerce(name: str, kind: str, value):
    if value is None:
        return None
    bad = EventError("bad_request", f"column {name!r} takes {_article(kind)} {kind} value",
                     {"column": name, "type": kind, "value": repr(value)[:100]})
    if kind == "text":
        if not isinstance(value, str):
            raise bad
        if len(value) > 100_000:
            raise EventError("too_large", f"column {name!r}: text over 100000 characters",
                             {"column": name})
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not math.isfinite(value)):
            raise bad
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            raise bad
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
        return value if len(value) == 10 else parsed.isoformat()
    raise bad


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def seal(ctx, table: Table, values: dict) -> dict:
    """Encrypt secret columns before they reach the store."""
    if not table.has_secrets:
        return values
    box = ctx.services.secrets
    secret = {c.name for c in table.columns if c.secret}  # values are checked: no stray keys
    return {k: (box.encrypt(v) if v is not None and k in secret else v)
            for k, v in values.items()}


def reveal(services, table: Table, values: dict | None, clear: bool) -> dict | None:
    """Stored values as a viewer may see them: decrypted, or masked (``••••1234``)."""
    if values is None or not table.has_secrets:
        return values
    out = dict(values)
    for column in table.columns:
        if column.secret and out.get(column.name) is not None:
            plain = services.secrets.decrypt(out[column.name])
            out[column.name] = plain if clear else mask(plain)
    return out


def sees_clear(role: str | None, viewer_id: str, author_id: str) -> bool:
    return role == "owner" or viewer_id == author_id


def table_view(table: Table) -> dict:
    return {"id": table.id, "projectId": table.project_id, "name": table.name,
            "columns": [{"name": c.name, "type": c.type, "secret": c.secret}
                        for c in table.columns],
            "createdBy": table.created_by, "createdAt": iso(table.created_at),
            "updatedAt": iso(table.updated_at)}


def row_view(services, table: Table, row: Row, clear: bool) -> dict:
    return {"id": row.id, "tableId": row.table_id,
            "values": reveal(services, table, row.values, clear), "version": row.version,
            "authorId": row.author_id, "createdAt": iso(row.created_at),
            "updatedAt": iso(row.updated_at), "updatedBy": row.updated_by}


def change_view(services, table: Table, change: RowChange, clear: bool) -> dict:
    return {"seq": change.seq, "rowId": change.row_id, "version": change.version,
            "op": change.op, "userId": change.user_id, "at": iso(change.at),
            "before": reveal(services, table, change.before, clear),
            "after": reveal(services, table, change.after, clear)}


async def push_row(ctx, table: Table, event: str, row: Row, extra: dict | None = None) -> None:
    """Push a row change to the project room, not echoing the sender (it has the ack).

    With secret columns, owners and the row's author get clear values and everyone else
    gets them masked: owners listen on ``project:<id>:owners``, the others on
    ``project:<id>:others``, and the author's own sockets are found through presence.
    """
    pid = table.project_id
    room = f"project:{pid}"
    extra = extra or {}

    def body(clear: bool) -> dict:
        return {"projectId": pid, "tableId": table.id,
                "row": row_view(ctx.services, table, row, clear), **extra}

    delivery = ctx.services.delivery
    if not table.has_secrets:
        await delivery.push_forms(room, event, [Form(room, body(True), (ctx.sid,))])
        return
    author_sids = []
    # The caller's own role was checked for this event (the scope): no read when they
    # wrote the row, the common case.
    author_role = ctx.project_role if row.author_id == ctx.user_id and ctx.project_role \
        else await ctx.store.projects.get_member_role(pid, row.author_id)
    if author_role != "owner":
        author_sids = [sid for sid, uid in await ctx.services.presence.sockets(pid)
                       if uid == row.author_id]
    # One push in three forms, numbered alike; replay picks the form by role and author.
    forms = [Form(f"{room}:owners", body(True), (ctx.sid,)),
             *(Form(sid, body(True)) for sid in author_sids if sid != ctx.sid),
             Form(f"{room}:others", body(False), (ctx.sid, *author_sids), masked=True)]
    await delivery.push_forms(room, event, forms, author=row.author_id)
