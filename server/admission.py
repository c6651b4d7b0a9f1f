"""Admission of new Socket.IO connections: a bounded number of handshakes at a time.

A handshake is the websocket upgrade (or the first polling request), Engine.IO's open
packet, and the Socket.IO CONNECT with its token checked against the store: a few ms of the
event loop each. When thousands of clients reconnect at once (a deploy, a dead instance),
every one of those steps is ready to run together; the loop then takes a whole round of
them between any two other callbacks, and ``/health``, ``/ready`` and the events of users
already connected wait seconds behind the storm (``bench/handshake_storm.py``).

So at most ``HANDSHAKE_CONCURRENCY`` sessions are between their first request and the end
of their Socket.IO CONNECT (accepted or refused); the next new session starts when one of
them finishes, one loop turn later, first come first served. Up to ``HANDSHAKE_QUEUE`` more
wait (an accepted TCP connection and a parsed request each, nothing else); past that a new
session is answered 503 ``unavailable`` (reason ``busy``) with ``Retry-After`` at once.
Socket.IO clients treat that as a failed attempt and reconnect with their backoff (the JS
client after ``reconnectionDelay``, randomized; python-socketio when reconnecting, or on a
first connect with ``retry=True``), and nginx (``proxy_next_upstream ... http_503``) tries
another instance first.

A session holds its place until its CONNECT is answered, its transport closes, or
``HOLD_S`` passes (a client that opens Engine.IO and never sends CONNECT cannot keep a place
for longer). Requests of sessions already open (polling with ``sid``, the upgrade to a
websocket) are never held back.
"""
from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.clock import Clock, Timer

HOLD_S = 2.0  # longest a session keeps its place without a Socket.IO CONNECT
RETRY_AFTER_S = 1  # what a refused handshake is told (clients use their own backoff anyway)


class Ticket:
    """One session's place among the handshakes in progress."""

    __slots__ = ("bound", "released", "timer")

    def __init__(self) -> None:
        self.bound = False  # an Engine.IO session has the place (it outlives the request)
        self.released = False
        self.timer: Timer | None = None


class Admission:
    """``limit`` handshakes in progress at once, ``queue`` more waiting for a place.

    ``peak`` is the most that were ever in progress together (what the tests check against
    the limit); ``on_wait`` gets each admitted handshake's wait in seconds, ``on_refused``
    is called for each one turned away, ``on_saturated`` with True when every place is
    taken (a new session would wait) and False when one is free again."""

    on_saturated: Callable[[bool], None] | None = None

    def __init__(self, limit: int, queue: int, clock: Clock, *,
                 on_wait: Callable[[float], None] | None = None,
                 on_refused: Callable[[], None] | None = None):
        self.limit, self.queue, self.clock = limit, queue, clock
        self.on_wait, self.on_refused = on_wait, on_refused
        self.in_progress = 0
        self.peak = 0
        self.saturated = False
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def enter(self) -> Ticket | None:
        """A place for a new session, after waiting for one if need be; None when the
        queue is full (the caller answers 503)."""
        started = self.clock.monotonic()
        if self.in_progress < self.limit and not self._waiters:
            self.in_progress += 1
            self._changed()
            return self._admit(started)
        if len(self._waiters) >= self.queue:
            if self.on_refused:
                self.on_refused()
            return None
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # set by a release, which hands its place over (in_progress stays)
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._hand_over()  # the place came just as this waiter gave up
            else:
                self._waiters.remove(fut)
            raise
        return self._admit(started)

    def _admit(self, started: float) -> Ticket:
        self.peak = max(self.peak, self.in_progress)
        ticket = Ticket()
        ticket.timer = self.clock.call_later(HOLD_S, self.release, ticket)
        if self.on_wait:
            self.on_wait(self.clock.monotonic() - started)
        return ticket

    def release(self, ticket: Ticket) -> None:
        """The session's handshake is over (any number of calls; the first counts)."""
        if ticket.released:
            return
        ticket.released = True
        if ticket.timer is not None:
            ticket.timer.cancel()
            ticket.timer = None  # a cycle (ticket, timer, its callback) the socket would keep
        self._hand_over()

    def finish(self, environ: dict | None) -> None:
        """The session opened from ``environ`` had its CONNECT answered, or ended."""
        request = environ.get("aiohttp.request") if environ else None
        ticket = request.pop(TICKET, None) if request is not None else None
        if ticket is not None:
            self.release(ticket)

    def _hand_over(self) -> None:
        # The place goes straight to the oldest waiter: it runs at the loop's next turn,
        # after whatever is ready now.
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.in_progress -= 1
        self._changed()

    def _changed(self) -> None:
        saturated = self.in_progress >= self.limit
        if saturated != self.saturated:
            self.saturated = saturated
            if self.on_saturated:
                self.on_saturated(saturated)


ADMISSION = web.AppKey("admission", Admission)
TICKET = web.RequestKey("admission_ticket", Ticket)


def new_session(request: web.BaseRequest) -> bool:
    """The first request of an Engine.IO session (polling or websocket): no ``sid`` yet."""
    return request.path.startswith("/socket.io") and "sid" not in request.query


Recheck = Callable[[web.Request], web.StreamResponse | None]


def admit_handshakes(recheck: Recheck):
    """The middleware; ``recheck`` may still turn an admitted session away (a drain that
    began while it waited) with its own answer."""

    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if not new_session(request):
            return await handler(request)
        admission = request.app[ADMISSION]
        ticket = await admission.enter()
        if ticket is None:
            return web.json_response({"ok": False, "error": {
                "code": "unavailable", "message": "this instance is busy with other "
                "connections; try again shortly", "details": {
                    "reason": "busy", "retryAfterMs": RETRY_AFTER_S * 1000}}},
                status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
        if request.transport is None or request.transport.is_closing():
            admission.release(ticket)  # the client gave up while it waited: nothing to do
            return web.Response(status=503)
        refused = recheck(request)
        if refused is not None:
            admission.release(ticket)
            return refused
        request[TICKET] = ticket
        try:
            return await handler(request)
        finally:
            if not ticket.bound:  # no session came of it (refused, or the client went away)
                admission.release(ticket)

    return middleware


def bind_session(environ: dict) -> None:
    """An Engine.IO session opened from this request (``environ``): it keeps the request's
    place until ``Admission.finish``."""
    ticket = ticket_of(environ)
    if ticket is not None:
        ticket.bound = True


def ticket_of(environ: dict | None) -> Ticket | None:
    request = environ.get("aiohttp.request") if environ else None
    return request.get(TICKET) if request is not None else None


def setup(app: web.Application, admission: Admission,
          recheck: Recheck = lambda request: None) -> None:
    app[ADMISSION] = admission
    app.middlewares.append(admit_handshakes(recheck))
