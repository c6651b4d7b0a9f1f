"""A protocol-faithful local fake of Anthropic's Messages API (streaming), on loopback.

``POST /v1/messages`` with ``stream: true`` answers ``text/event-stream`` exactly as the API
does: ``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` with
``text_delta``, ``content_block_stop``, ``message_delta`` (stop_reason, usage),
``message_stop`` — each with its ``event:`` line — and an ``error`` event where a script
asks for one. Errors before the stream are HTTP statuses with the API's JSON error body and
``retry-after``/``retry-after-ms`` headers (429 rate_limit_error, 529 overloaded_error…).
The key is accepted as ``x-api-key`` (SDK 1.x) or ``Authorization: Bearer`` (2.x).

Each request takes the next ``Script`` from the queue (or ``default``); every request is
recorded (headers, body, when it started, whether the client went away).
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

KEY = "sk-ant-test-key"


@dataclass
class Script:
    deltas: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "."])
    status: int = 200  # != 200: an HTTP error before any stream
    error_type: str = ""  # the error body's type (HTTP error, or the mid-stream event)
    headers: dict = field(default_factory=dict)
    error_after: int | None = None  # send an ``error`` event after this many deltas
    delay: float = 0.0  # between deltas
    ping_every: int = 0  # a ping event after every N deltas
    stall_before_headers: float = 0.0  # sleep before answering at all
    stall_after: int | None = None  # stop sending (but keep the connection) after N deltas
    hold: asyncio.Event | None = None  # wait on it after ``hold_after`` deltas
    hold_after: int = 0
    stop_reason: str = "end_turn"
    first_delta_event: asyncio.Event | None = None


@dataclass
class Seen:
    headers: dict
    body: dict
    started: float
    deltas_sent: int = 0
    disconnected: bool = False
    finished: bool = False


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic:
    def __init__(self):
        self.queue: list[Script] = []
        self.default = Script()
        self.requests: list[Seen] = []
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.sent_at: list[float] = []  # perf_counter of every delta written (benchmarks)

    def script(self, *scripts: Script) -> None:
        self.queue.extend(scripts)

    async def start(self) -> FakeAnthropic:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        # Stalled handlers (timeout tests) are cut at once on stop, not awaited for a minute.
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    @staticmethod
    def _error(status: int, kind: str, message: str, headers: dict | None = None):
        return web.json_response({"type": "error", "error": {"type": kind, "message": message},
                                  "request_id": f"req_{uuid.uuid4().hex[:12]}"},
                                 status=status, headers=headers or {})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen = Seen(dict(request.headers), body, time.monotonic())
        self.requests.append(seen)
        auth = request.headers.get("x-api-key") or \
            request.headers.get("Authorization", "").removeprefix("Bearer ")
        if auth != KEY:
            return self._error(401, "authentication_error", "invalid x-api-key")
        if not body.get("messages") or not body.get("model") or not body.get("max_tokens"):
            return self._error(400, "invalid_request_error", "messages, model, max_tokens")
        script = self.queue.pop(0) if self.queue else self.default
        if script.stall_before_headers:
            await asyncio.sleep(script.stall_before_headers)
        if script.status != 200:
            return self._error(script.status, script.error_type or "api_error",
                               f"scripted {script.status}", script.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "request-id": f"req_{uuid.uuid4().hex[:12]}"})
        prompt_tokens = len(json.dumps(body)) // 4
        mid = f"msg_{uuid.uuid4().hex[:24]}"
        try:
            await response.prepare(request)
            await response.write(sse("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "content": [],
                "model": body["model"], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 1}}}))
            await response.write(sse("content_block_start", {
                "type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}))
            await response.write(sse("ping", {"type": "ping"}))
            for i, text in enumerate(script.deltas):
                if script.error_after is not None and i == script.error_after:
                    await response.write(sse("error", {"type": "error", "error": {
                        "type": script.error_type or "overloaded_error",
                        "message": "Overloaded"}}))
                    seen.finished = True
                    return response
                if script.stall_after is not None and i == script.stall_after:
                    await asyncio.sleep(3600)
                if script.hold is not None and i == script.hold_after:
                    await script.hold.wait()
                if script.delay:
                    await asyncio.sleep(script.delay)
                await response.write(sse("content_block_delta", {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}))
                self.sent_at.append(time.perf_counter())
                seen.deltas_sent += 1
                if i == 0 and script.first_delta_event is not None:
                    script.first_delta_event.set()
                if script.ping_every and (i + 1) % script.ping_every == 0:
                    await response.write(sse("ping", {"type": "ping"}))
            await response.write(sse("content_block_stop", {"type": "content_block_stop",
                                                            "index": 0}))
            await response.write(sse("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": script.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": len(script.deltas)}}))
            await response.write(sse("message_stop", {"type": "message_stop"}))
            seen.finished = True
            return response
        except ConnectionError:  # the client closed the stream (cancel, timeout)
            seen.disconnected = True
            return response
        except asyncio.CancelledError:
            seen.disconnected = True
            raise


class FakeInThread:
    """The fake on its own event loop in a thread, for sync fixtures (cluster tests, where
    the servers are other processes) and benchmarks. ``fake`` is the FakeAnthropic."""

    def __init__(self):
        import threading

        self.fake = FakeAnthropic()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="fake-anthropic")

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)
        return self.fake

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
