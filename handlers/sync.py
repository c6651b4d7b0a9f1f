"""``sync``: after a reconnect, the pushes a client missed in the rooms it follows, or word
that a room must be reloaded (docs/DELIVERY.md). The right to read each room is checked
again: a member removed meanwhile (or a room that is gone) gets ``forbidden`` for it."""
from __future__ import annotations

from pydantic import Field

from handlers import scopes
from handlers.base import Int, Payload, event
from services.replay import sequenced
from store.base import role_at_least
from store.errors import EventError, Forbidden, NotFound

_PROJECT = scopes.Project("id", "viewer")
_CONVERSATION = scopes.Conversation("id", "viewer")


class SyncPosition(Payload):
    room: str = Field(min_length=1, max_length=200)
    seq: int | None = Int(None, description="the last seq seen; null asks for the head only")
    epoch: str | None = Field(None, max_length=64)


class SyncPayload(Payload):
    rooms: list[SyncPosition] = Field(min_length=1, max_length=100)


async def _readable(ctx, room: str) -> bool:
    """Whether the caller sees a room's pushes in clear (raises if they may not read it)."""
    if not sequenced(room):
        raise EventError("bad_request", f"{room!r} is not a room with a sequence "
                         "(project:<id>, conversation:<id>, user:<id>)")
    kind, _, ident = room.partition(":")
    if kind == "user":
        if ident != ctx.user_id:
            raise Forbidden("you may not read this room")
        return True
    try:
        if kind == "project":
            _, role = await _PROJECT.resolve(ctx, ident)
            return role_at_least(role, "owner")
        await _CONVERSATION.resolve(ctx, ident)
    except NotFound:
        # The client named the room from when it could read it: one answer whether the
        # room is gone or the caller was removed (room names reveal nothing).
        raise Forbidden("you may not read this room") from None
    return True


@event("sync", SyncPayload,
       ack="{replayed: {room: n}, resync: [room], heads: {room: {seq, epoch}}, "
           "errors: {room: {code, message}}}")
async def on_sync(ctx, p: SyncPayload):
    """Re-send the pushes missed since ``seq`` in each room, in order, to this socket, then
    answer; a room whose history is gone (another epoch, older than the buffer) is in
    ``resync``: reload it with the list/get events."""
    delivery = ctx.services.delivery
    replayed: dict[str, int] = {}
    resync: list[str] = []
    heads: dict[str, dict] = {}
    errors: dict[str, dict] = {}
    for position in p.rooms:
        room = position.room
        try:
            clear = await _readable(ctx, room)
        except EventError as exc:
            errors[room] = {"code": exc.code, "message": exc.message}
            continue
        if position.seq is None:
            head = await delivery.head(room)
        else:
            backlog = await delivery.since(room, position.seq, position.epoch)
            head = backlog.head
            if backlog.resync:
                resync.append(room)
            elif backlog.entries:
                sent = await ctx.gateway.replay(ctx.sid, backlog.entries, clear, ctx.user_id)
                if sent is None:  # the socket stopped reading: whatever it got, reload
                    resync.append(room)
                else:
                    replayed[room] = sent
        heads[room] = {"seq": head.seq, "epoch": head.epoch}
    return {"replayed": replayed, "resync": resync, "heads": heads, "errors": errors}


EVENTS = [on_sync]
