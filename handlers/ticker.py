"""ticker:* — subscribe to the cluster's single stream of values."""
from __future__ import annotations

from handlers.base import Empty, event
from services.ticker import ROOM
from store.ids import iso


@event("ticker:subscribe", Empty, ack="{interval, recent: [tick]}", emits=("ticker:tick",))
async def on_subscribe(ctx, p: Empty):
    """Receive ``ticker:tick {ts, value}``; the ack carries the latest values."""
    await ctx.enter_room(ROOM)
    recent = await ctx.store.ticks.recent_ticks(10)
    return {"interval": ctx.settings.ticker_interval_s,
            "recent": [{"ts": iso(at), "value": value, "producer": producer}
                       for at, value, producer in recent]}


@event("ticker:unsubscribe", Empty, ack="{subscribed: false}")
async def on_unsubscribe(ctx, p: Empty):
    """Stop receiving ticks."""
    await ctx.leave_room(ROOM)
    return {"subscribed": False}


EVENTS = [on_subscribe, on_unsubscribe]
