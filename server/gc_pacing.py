"""The cyclic garbage collector of a server process holding thousands of sockets.

A full collection (CPython's generation 2) walks every tracked object and holds the event
loop for all of it: measured here, about 0.3 ms per connected socket (some 150 objects
each: tasks, coroutines, timers, the websocket), so 0.6 s with 2,000 sockets, plus 0.1 s for
the modules, models and tables loaded at start. CPython starts one whenever the objects that
survived since the last grew by a quarter; while sockets are arriving that is every few
hundred sockets, each time longer (five or six in a 2,000-socket storm, 2-2.5 s of the loop
in all, in stalls of up to 0.7 s). Two things here:

* ``freeze_startup_heap``: what exists once the instance is up lives as long as the process;
  ``gc.freeze`` moves it out of every later collection (``gc.freeze``'s documented use).
* ``FullCollectionPacer``: while every handshake place is taken (``server/admission.py``:
  new connections arrive faster than they are handled), full collections are held off
  (generation 2's threshold raised); once a place has stayed free for ``QUIET_S``, the usual
  threshold is back and CPython's own rule decides at its next young collection. A storm
  then costs one full collection after it instead of several during it. Never longer than
  ``MAX_HOLD_S`` at a time, so a sustained flood cannot keep cyclic garbage for long.

Young collections (generations 0 and 1, a few ms at most) are left as they are. Process-wide
settings: ``python -m server`` applies them (``server/cli.py``); an app embedded in another
program (the tests) leaves the host's collector alone.
"""
from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.admission import ADMISSION
from services.clock import Clock, Timer

log = logging.getLogger("server.gc")
QUIET_S = 1.0  # a handshake place stays free this long before full collections run again
MAX_HOLD_S = 60.0
HELD_THRESHOLD = 1_000_000  # young collections before a full one: never, in practice


def freeze_startup_heap() -> int:
    """Collect once, then keep everything alive now out of later collections; how many
    objects that was."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class FullCollectionPacer:
    """``hold(True)`` holds full collections off; ``hold(False)`` lets them run again once
    nothing held them for ``quiet_s`` (arrivals come in waves during a storm: a place is
    free for a moment now and then); never more than ``max_hold_s`` in one go."""

    def __init__(self, clock: Clock, quiet_s: float = QUIET_S, max_hold_s: float = MAX_HOLD_S):
        self.clock, self.quiet_s, self.max_hold_s = clock, quiet_s, max_hold_s
        self.held = False
        self.holds = 0  # times full collections were held off (for tests and logs)
        self._threshold2 = gc.get_threshold()[2]
        self._longest: Timer | None = None
        self._quiet: Timer | None = None

    def hold(self, busy: bool) -> None:
        if busy:
            if self._quiet is not None:
                self._quiet.cancel()
                self._quiet = None
            if not self.held:
                self.held = True
                self.holds += 1
                t0, t1, self._threshold2 = gc.get_threshold()
                gc.set_threshold(t0, t1, HELD_THRESHOLD)
                self._longest = self.clock.call_later(self.max_hold_s, self._release, True)
        elif self.held and self._quiet is None:
            self._quiet = self.clock.call_later(self.quiet_s, self._release, False)

    def _release(self, too_long: bool) -> None:
        if not self.held:
            return
        self.held = False
        for timer in (self._longest, self._quiet):
            if timer is not None:
                timer.cancel()
        self._longest = self._quiet = None
        t0, t1, _ = gc.get_threshold()
        gc.set_threshold(t0, t1, self._threshold2)
        if too_long:
            log.warning("every handshake place taken for %.0f s: full garbage collections "
                        "run again meanwhile", self.max_hold_s)

    def close(self) -> None:
        self._release(False)


def pace(app: web.Application, clock: Clock) -> None:
    """For a server process: once every resource of the app is open, freeze the heap and
    hold full collections off while the app's handshake places are all taken."""

    async def paced(app: web.Application) -> AsyncIterator[None]:
        frozen = freeze_startup_heap()
        log.info("startup heap frozen", extra={"fields": {"objects": frozen}})
        pacer = FullCollectionPacer(clock)
        app[ADMISSION].on_saturated = pacer.hold
        yield
        app[ADMISSION].on_saturated = None
        pacer.close()

    app.cleanup_ctx.append(paced)
