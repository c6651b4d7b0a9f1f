"""A bound on what the server queues for one socket: a client that stops reading is
disconnected instead of growing the server's memory.

python-engineio queues each socket's outgoing packets in an unbounded ``asyncio.Queue`` that
a writer task drains into the websocket. When the client stops reading, the TCP buffers
fill, the writer blocks in its send, and every push to the socket's rooms (and every ack)
piles up in the queue; engineio's ping timeout does not help, since a socket whose writer is
stuck is never closed. engineio offers no limit, so this adds the smallest hooks that make
one, all on one engineio server subclass:

* ``create_queue`` — engineio's factory for exactly these queues — returns a queue that
  counts the bytes of the messages it holds;
* ``send_packet`` — every message to a socket passes through it (emits, room pushes, acks)
  — drops the socket instead of queueing a message that would take it past the limit;
* the aiohttp websocket wrapper is recorded per socket, because dropping must also cut the
  TCP connection: the writer is blocked in a send that only the peer could unblock.

The same hook writes a message at once, in the sender's own turn, when the socket's writer
has nothing queued and the connection's buffer is empty: engineio's writer task would
otherwise take it a few loop turns later (its queue read goes through ``wait_for``, a task
of its own), and a turn can be long — a model's reply arriving in one burst is parsed in
slices of a few milliseconds, and the first words waited behind one. Anything else (a queue
not empty, a frame still draining, a slow reader) goes through the queue as before, so the
order of a socket's messages and the bound hold.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import engineio
from aiohttp import web as aiohttp_web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as aiohttp_driver

_MESSAGE = eio_packet.MESSAGE


def message_size(pkt: Any) -> int:
    """Bytes a queued packet holds: a message's encoded text (Socket.IO encodes JSON as
    ASCII, so characters are bytes). Control packets (ping, noop, close) are a character
    each and at most a few per socket: they count 0."""
    if pkt is None or pkt.packet_type != _MESSAGE:
        return 0
    data = pkt.data
    return len(data) if type(data) is str or type(data) is bytes else 0


class SendQueue(asyncio.Queue):
    """One socket's outgoing packets, with the bytes they hold (``_put``/``_get`` are the
    hooks asyncio's own queue subclasses override)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self._drained: tuple[int, asyncio.Future] | None = None

    def _put(self, item: Any) -> None:
        self.bytes += message_size(item)
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= message_size(item)
        if self._drained is not None and self.bytes <= self._drained[0]:
            if not self._drained[1].done():
                self._drained[1].set_result(None)
            self._drained = None
        return item

    def reader_waiting(self) -> bool:
        """Empty, and its reader (the socket's writer task) parked on ``get``."""
        return not self._queue and any(not g.done() for g in self._getters)  # type: ignore[attr-defined]

    async def drained(self, limit: int) -> None:
        """Return once at most ``limit`` bytes are queued (the writer took the rest)."""
        if self.bytes <= limit:
            return
        if self._drained is None:
            self._drained = (limit, asyncio.get_running_loop().create_future())
        await self._drained[1]


class _TrackedWebSocket(aiohttp_driver.WebSocket):
    """engineio's aiohttp websocket wrapper, recorded by socket id for as long as it runs
    (engineio hands it the socket's bound ``_websocket_handler``).

    Two costs of the library's wrapper go, paid on every message to every socket: the
    permessage-deflate extension is not offered (as the Node Socket.IO server, whose
    ``perMessageDeflate`` is off by default: deflating each small JSON frame costs more CPU
    than the bytes it saves — half of a replay's send time here), and ``send`` calls aiohttp
    directly instead of asking ``inspect`` whether it is a coroutine each time."""

    async def __call__(self, environ):
        sid = self.handler.__self__.sid
        request = environ["aiohttp.request"]
        self.server.connections[sid] = request
        self.request = request
        self.writing = False  # a direct write (BoundedEngineServer.send_packet) in progress
        try:
            self._sock = aiohttp_web.WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=False)
            await self._sock.prepare(request)
            self.environ = environ
            self.server.websockets[sid] = self
            await self.handler(self)
            return self._sock
        finally:
            self.server.connections.pop(sid, None)
            self.server.websockets.pop(sid, None)

    def can_write_now(self) -> bool:
        if self.writing:
            return False
        transport = self.request.transport
        return transport is not None and not transport.is_closing() and \
            transport.get_write_buffer_size() == 0

    async def write_now(self, message: str | bytes) -> None:
        self.writing = True
        try:
            await self.send(message)
        finally:
            self.writing = False

    async def send(self, message):
        if isinstance(message, str):
            await self._sock.send_str(message)
        else:
            await self._sock.send_bytes(message)


class BoundedEngineServer(engineio.AsyncServer):
    """``send_queue_max``: bytes of messages one socket may have queued; a message that
    would go past it drops the socket (a single message larger than the limit is still sent
    when nothing else is queued). ``peak_bytes``: the most any socket has had queued."""

    send_queue_max: int = 8 << 20
    on_slow_consumer: Callable[[str, int], None] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.peak_bytes = 0
        self.connections: dict[str, Any] = {}  # sid -> the websocket's aiohttp request
        self.websockets: dict[str, _TrackedWebSocket] = {}  # sid -> its websocket wrapper
        # A copy: the driver's table is shared by every engineio server in the process.
        self._async = {**self._async, "websocket": _TrackedWebSocket}

    def create_queue(self, *args, **kwargs):
        return SendQueue()

    async def send_packet(self, sid, pkt):
        socket = self.sockets.get(sid)
        if socket is not None:
            if socket.closing or socket.closed:
                return  # going away: nothing more is queued for it
            queue = socket.queue
            size = message_size(pkt)
            if queue.bytes and queue.bytes + size > self.send_queue_max:
                await self._drop_slow_consumer(sid, socket, queue.bytes)
                return
            ws = self.websockets.get(sid)
            if ws is not None and socket.upgraded and queue.reader_waiting() and \
                    ws.can_write_now():
                if await socket.check_ping_timeout():
                    try:
                        await ws.write_now(pkt.encode())
                    except Exception:  # a connection going away: its reader ends the socket
                        pass
                return
        await super().send_packet(sid, pkt)
        if socket is not None and socket.queue.bytes > self.peak_bytes:
            self.peak_bytes = socket.queue.bytes

    async def drained(self, sid: str, limit: int, timeout: float) -> bool:
        """Wait until socket ``sid`` has at most ``limit`` bytes queued: a sender of many
        messages (a replay) keeps to the pace of the client's reading instead of growing the
        queue past the bound. False if the socket is gone or still full after ``timeout``."""
        socket = self.sockets.get(sid)
        if socket is None or socket.closing or socket.closed:
            return False
        try:
            await asyncio.wait_for(socket.queue.drained(limit), timeout)
        except TimeoutError:
            return False
        return not (socket.closing or socket.closed)

    async def _drop_slow_consumer(self, sid, socket, queued: int) -> None:
        if self.on_slow_consumer:
            self.on_slow_consumer(sid, queued)
        await self.cut(sid)

    async def cut(self, sid: str) -> None:
        """End the socket by cutting its connection, with no close packet: the client sees
        its transport lost (and reconnects, if it does), the server a server disconnect."""
        socket = self.sockets.get(sid)
        request = self.connections.get(sid)
        if request is not None and request.transport is not None:
            # abort() only schedules the connection's loss; close() marks the socket as
            # closing before that runs, so the disconnect is reported with our reason.
            request.transport.abort()
        if socket is not None:
            await socket.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT)
