"""The one background task an engine runs between ``start`` and ``stop``, and the periodic
loop most of them are: do the work, sleep on the injected clock, go on after a failure."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from services.clock import Clock


class Background:
    def __init__(self, name: str):
        self.name = name
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._task = asyncio.create_task(loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def every(clock: Clock, interval: float, work: Callable[[], Awaitable[object]],
                log: logging.Logger, what: str) -> None:
    """``work()``, then ``interval`` seconds on the clock, forever; a failure is logged (as a
    warning: the next round tries again) and does not end the loop."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s failed", what, exc_info=True)
        await clock.sleep(interval)
