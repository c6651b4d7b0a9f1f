"""``python -m server`` plus an event-loop lag probe, for bench/chat_stream.py only.

The probe sleeps 5 ms in a loop on the server's own event loop and records how late each
wake-up is; ``GET /bench/lag`` returns (and resets) the samples' p50/p99/max. Everything
else is the real app from ``server.app.create_app``, with the garbage collector paced as
``python -m server`` paces it (server/gc_pacing.py).
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from server import gc_pacing
from server.app import CLOCK, create_app
from server.logs import setup_logging
from services.config import Settings

PERIOD = 0.005


def main() -> None:
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.instance_id)
    app = create_app(settings)
    gc_pacing.pace(app, app[CLOCK])  # as python -m server does
    samples: list[float] = []

    async def probe(app_):
        async def loop():
            while True:
                before = time.perf_counter()
                await asyncio.sleep(PERIOD)
                samples.append(time.perf_counter() - before - PERIOD)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def lag(request):
        got = sorted(samples)
        samples.clear()
        if not got:
            return web.json_response({"n": 0})
        pick = lambda q: round(got[min(len(got) - 1, int(q * len(got)))] * 1000, 3)  # noqa: E731
        return web.json_response({"n": len(got), "p50": pick(0.5), "p99": pick(0.99),
                                  "max": round(got[-1] * 1000, 3)})

    app.cleanup_ctx.append(probe)
    app.router.add_get("/bench/lag", lag)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None,
                shutdown_timeout=5)


if __name__ == "__main__":
    main()
