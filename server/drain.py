"""Taking an instance out of rotation without cutting its users off (SIGTERM).

1. ``/ready`` answers 503 at once, so a load balancer stops choosing this instance; a new
   Socket.IO handshake gets 503 too, which nginx (``proxy_next_upstream ... http_503``)
   retries on another instance.
2. Capture ingests and chat imports hand their jobs back to the queue: another instance
   claims them now, not when their lease lapses.
3. Every socket gets ``server:draining {reconnectInMs}``, its own moment in the window, and
   at that moment its transport is closed (not a Socket.IO disconnect, which clients take
   as final): clients reconnect by themselves, through the balancer, to another instance,
   a few at a time over ``DRAIN_TIMEOUT_S`` rather than in one stampede. Row locks outlive
   the disconnect for ``LOCK_GRACE_S``, so a holder who reconnects keeps its lock.
4. Replies still generating get the rest of the window to finish; then the process exits
   through aiohttp's normal shutdown. A second SIGTERM exits at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from server.admission import new_session
from server.keys import REALTIME, SETTINGS, services_of

log = logging.getLogger("server.drain")
SPREAD = 0.8  # of the window, for disconnects; the rest is for the last replies


class Drain:
    def __init__(self, app: web.Application):
        self.app = app
        self.draining = False
        self.exit_process = False  # set when run as a server process (python -m server)
        self.done = asyncio.Event()
        self._task: asyncio.Task | None = None

    def begin(self) -> None:
        if self.draining:  # asked twice: stop waiting
            if self.exit_process:
                log.warning("second SIGTERM: exiting now")
                os.kill(os.getpid(), signal.SIGINT)
            return
        self.draining = True
        self._task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        realtime = self.app[REALTIME]
        services = services_of(self.app)
        clock, window = services.clock, self.app[SETTINGS].drain_timeout_s
        started = clock.monotonic()
        sids = list(realtime.sockets)
        log.info("draining", extra={"fields": {"sockets": len(sids), "window_s": window}})
        try:
            for engine in (services.pcap, services.imports):
                with contextlib.suppress(Exception):
                    await engine.stop()  # hands running jobs back to the queue
            step = window * SPREAD / max(1, len(sids))
            for i, sid in enumerate(sids):
                with contextlib.suppress(Exception):
                    await realtime.sio.emit("server:draining",
                                            {"reconnectInMs": round(i * step * 1000)}, to=sid)
            for i, sid in enumerate(sids):
                wait = started + i * step - clock.monotonic()
                if wait > 0:
                    await clock.sleep(wait)
                await realtime.close_transport(sid)
            while services.chat.live and clock.monotonic() - started < window:
                await clock.sleep(0.1)
        except Exception:
            log.exception("drain failed; exiting")
        log.info("drained", extra={"fields": {"seconds": round(clock.monotonic() - started, 2)}})
        self.done.set()
        if self.exit_process:
            os.kill(os.getpid(), signal.SIGINT)  # aiohttp's graceful shutdown from here


DRAIN = web.AppKey("drain", Drain)


def refusal(request: web.Request) -> web.Response | None:
    """While draining, a new Socket.IO session is refused (a session's later polling
    requests carry its ``sid`` and go on)."""
    if new_session(request) and request.app[DRAIN].draining:
        return web.json_response({"ok": False, "error": {
            "code": "unavailable", "message": "this instance is draining; connect to another"}},
            status=503, headers={"Retry-After": "1"})
    return None


@web.middleware
async def refuse_new_sockets(request: web.Request, handler):
    return refusal(request) or await handler(request)


async def _on_sigterm(app: web.Application) -> AsyncIterator[None]:
    # run_app installed its own SIGTERM handler (an immediate graceful exit) before the
    # app started; this one drains first.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, app[DRAIN].begin)
    yield


def setup(app: web.Application) -> None:
    app[DRAIN] = Drain(app)
    app.middlewares.append(refuse_new_sockets)


def drain_on_sigterm(app: web.Application) -> None:
    """For a server process: SIGTERM drains, then the process exits. (An app run inside
    another program, e.g. a test, is drained by calling ``app[DRAIN].begin()``.)"""
    app[DRAIN].exit_process = True
    app.cleanup_ctx.append(_on_sigterm)
