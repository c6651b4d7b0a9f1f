"""The fake Anthropic server (tests/fake_anthropic.py) as a process of its own, for the chat
benchmark: a model's API is another machine, so its work must not share an interpreter
(and a GIL) with the clients being timed, as it would in a thread of the bench.

    python -m bench.fake_process            # prints its URL on the first line

Control routes beside ``/v1/messages`` (loopback, bench only): ``POST /_bench/script``
sets the default script (``deltas``, ``delay``, ``firstByte``); ``GET /_bench/state`` returns
when each delta was written (``time.perf_counter()``, CLOCK_MONOTONIC: one clock for every
process on the machine) and the body of the last request.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

from aiohttp import web

from tests.fake_anthropic import FakeAnthropic, Script


async def serve() -> None:
    fake = await FakeAnthropic().start()

    async def script(request: web.Request) -> web.Response:
        body = await request.json()
        fake.default = Script(deltas=body["deltas"], delay=body.get("delay", 0.0),
                              stall_before_headers=body.get("firstByte", 0.0))
        fake.sent_at.clear()
        return web.json_response({"ok": True})

    async def state(request: web.Request) -> web.Response:
        sent = list(fake.sent_at)
        fake.sent_at.clear()
        return web.json_response({"sentAt": sent,
                                  "lastBody": fake.requests[-1].body if fake.requests else None})

    control = web.Application()
    control.router.add_post("/_bench/script", script)
    control.router.add_get("/_bench/state", state)
    runner = web.AppRunner(control)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(fake.url, f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


class FakeInProcess:
    """Start the fake in a child process; ``url`` is the API, the rest drives it."""

    def __enter__(self) -> FakeInProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.fake_process"],
                                     stdout=subprocess.PIPE, text=True)
        self.url, self.control = self.proc.stdout.readline().split()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def script(self, deltas: list[str], delay: float = 0.0, first_byte: float = 0.0) -> None:
        """Each reply: ``deltas`` ``delay`` s apart, after ``first_byte`` s of thinking."""
        self._call("/_bench/script", {"deltas": deltas, "delay": delay,
                                      "firstByte": first_byte})

    def state(self) -> dict:
        """``sentAt`` (since the last call) and ``lastBody``."""
        return self._call("/_bench/state")


if __name__ == "__main__":
    asyncio.run(serve())
