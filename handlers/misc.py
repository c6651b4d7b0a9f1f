"""Small events that belong to no domain."""
from __future__ import annotations

from handlers.base import Empty, event
from store.ids import iso


@event("ping", Empty, auth=False, ack="{pong, ts, instance}")
async def on_ping(ctx, p: Empty):
    """Liveness from the client's side, and which instance answers; touches no store."""
    return {"pong": True, "ts": iso(ctx.services.clock.now()),
            "instance": ctx.services.settings.instance_id}


EVENTS = [on_ping]
