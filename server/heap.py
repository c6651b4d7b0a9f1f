"""Give the C heap's free pages back to the operating system now and then (glibc only).

Buffers above Python's small-object size (a join ack with a project's members, a page of
rows, an export chunk, the encoded frames carrying them) come from glibc's heap. Freed among
long-lived allocations they leave free pages glibc keeps: bench/capacity.py measured about
10 KB per connection of them after 5,000 sockets had connected and joined, a quarter of the
server's growth. ``malloc_trim(0)`` returns them (a few ms for a few hundred MB, in a worker
thread); elsewhere than glibc (musl, macOS) there is nothing to call and nothing is done.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from services.clock import Clock

log = logging.getLogger("server.heap")
TRIM_INTERVAL_S = 15.0


def malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    return None


async def trim_loop(clock: Clock, interval: float = TRIM_INTERVAL_S) -> None:
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await clock.sleep(interval)
        try:
            await asyncio.to_thread(trim, 0)
        except Exception:
            log.exception("malloc_trim failed")
