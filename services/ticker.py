"""The ticker (the seed's random_number task): exactly one instance — the holder of the
"ticker" leader lease — produces a value every TICKER_INTERVAL_S, stores it and pushes
``ticker:tick`` to subscribers. Followers poll the lease four times an interval, so when a
leader dies another produces within 1.5 intervals; the lease is checked right before every
value, so two instances never produce at once."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from services.background import Background
from services.container import Core
from services.leader import Leader
from services.redis_client import OutageLog
from store.errors import Unavailable
from store.ids import iso

log = logging.getLogger("services.ticker")
ROOM = "ticker"


class Ticker:
    def __init__(self, core: Core, leader: Leader, interval: float):
        self.core = core
        self.leader = leader
        self.interval = interval
        self._loop = Background("ticker")
        self._rng = random.Random()
        self.produced = 0

    async def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.leader.resign()

    async def _run(self) -> None:
        clock = self.core.clock
        last: float | None = None
        outage = OutageLog(log, "ticker")
        while True:
            try:
                now = clock.monotonic()
                if (last is None or now - last >= self.interval) and await self.leader.hold():
                    last = now
                    await self.produce()
                outage.ok()
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:  # no lease without Redis: nobody produces meanwhile
                outage.failed(exc)
            except Exception:
                log.exception("ticker failed")
            await clock.sleep(self.interval / 4)

    async def produce(self) -> dict:
        at = self.core.clock.now()
        value = round(self._rng.uniform(0, 100), 4)
        producer = self.core.settings.instance_id
        await self.core.store.ticks.add_tick(value, at, producer)
        tick = {"ts": iso(at), "value": value, "producer": producer}
        await self.core.gateway.sio.emit("ticker:tick", tick, to=ROOM)
        self.produced += 1
        return tick
