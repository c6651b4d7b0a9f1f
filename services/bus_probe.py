"""The Redis bus's publish→receive lag, measured by the instance itself.

Every ``interval`` seconds (on the injected clock) the probe publishes a message of kind
``metrics:probe`` carrying its own token and a sequence number, and remembers when it sent
it; when the message comes back through Redis it reports the elapsed time. Send and receive
are timed by this process's performance counter, so the figure is a true round trip through
Redis (publish, fan-out, our subscriber's queue), with no clock skew between machines.
Other instances' probes (another token) are ignored. A probe not back by the time
``lost_after`` more have been sent is reported lost. Only meaningful on Redis: the
in-process bus delivers inline.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from services.background import Background, every
from services.bus import Bus
from services.clock import Clock

log = logging.getLogger("services.bus_probe")
KIND = "metrics:probe"


class BusProbe:
    def __init__(self, bus: Bus, clock: Clock, *, observe: Callable[[float], None],
                 lost: Callable[[], None], interval: float = 5.0, lost_after: int = 6):
        self.bus = bus
        self.clock = clock
        self.observe = observe
        self.lost = lost
        self.interval = interval
        self.lost_after = lost_after
        self.token = uuid.uuid4().hex
        self.sent: dict[int, float] = {}  # seq -> perf_counter at publish
        self._seq = 0
        self._loop = Background("bus-probe")

    async def start(self) -> None:
        self.bus.on(KIND, self._on_probe)
        # Redis away: that probe is lost, the next one tries again.
        self._loop.start(lambda: every(self.clock, self.interval, self.probe, log,
                                       "bus probe"))

    async def stop(self) -> None:
        await self._loop.stop()

    async def probe(self) -> None:
        """Publish one probe (and give up on those ``lost_after`` probes old)."""
        self._seq += 1
        for seq in [seq for seq in self.sent if seq <= self._seq - self.lost_after]:
            del self.sent[seq]
            self.lost()
        self.sent[self._seq] = time.perf_counter()
        await self.bus.publish(KIND, {"token": self.token, "seq": self._seq})

    async def _on_probe(self, data: dict) -> None:
        if data.get("token") != self.token:
            return
        seq = data.get("seq")
        sent = self.sent.pop(seq, None) if isinstance(seq, int) else None
        if sent is not None:
            self.observe(time.perf_counter() - sent)
