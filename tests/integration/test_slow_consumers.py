"""A client that stops reading its socket is disconnected once its send queue reaches
SEND_QUEUE_MAX_KB, and the queue never grows past that; the others in its room carry on."""
from __future__ import annotations

import json
import socket

import aiohttp
import pytest

from server.keys import METRICS, REALTIME
from tests.client import Client, eventually, unique_email
from tests.conftest import RunningServer, make_settings

QUEUE_KB = 256
BLOB = 90_000  # bytes of data per broadcast: several fill the queue
MAX_FLOOD = 600  # broadcasts (~54 MB): far more than the TCP buffers and the queue hold


def small_receive_buffer(addr_info) -> socket.socket:
    """The slow client's socket, with a small fixed receive window: the kernel would
    otherwise let it grow to tcp_rmem's maximum (tens of MB) before the server's writer
    blocks and its queue starts to fill."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    return sock


class RawSocket:
    """A Socket.IO client written by hand over aiohttp's websocket, so that it can stop
    reading (aiohttp then stops reading the TCP socket once ~64 KB are buffered)."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.http, self.ws, self.next_id = http, ws, 1
        self.sid = self.eio_sid = ""

    @classmethod
    async def connect(cls, url: str, token: str) -> RawSocket:
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(socket_factory=small_receive_buffer))
        ws = await http.ws_connect(url.replace("http", "ws", 1) +
                                   "/socket.io/?EIO=4&transport=websocket")
        raw = cls(http, ws)
        opened = await raw.frame()
        assert opened.startswith("0{"), opened  # Engine.IO open
        raw.eio_sid = json.loads(opened[1:])["sid"]
        await ws.send_str("40" + json.dumps({"token": token}))
        connected = await raw.frame()
        assert connected.startswith("40{"), connected
        raw.sid = json.loads(connected[2:])["sid"]
        return raw

    async def frame(self) -> str:
        while True:
            msg = await self.ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            if msg.data == "2":  # Engine.IO ping, while we still read
                await self.ws.send_str("3")
                continue
            return msg.data

    async def call(self, event: str, data: dict) -> dict:
        ack_id, self.next_id = self.next_id, self.next_id + 1
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data]))
        while not (frame := await self.frame()).startswith(f"43{ack_id}["):
            pass  # pushes (presence) before our answer
        return json.loads(frame[len(f"43{ack_id}"):])[0]

    async def until_closed(self) -> aiohttp.WSMsgType:
        """Read again: whatever was still buffered, then the end the server caused."""
        while True:
            msg = await self.ws.receive(timeout=10)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
                return msg.type

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


@pytest.fixture
async def flood_server(tmp_path):
    srv = await RunningServer(make_settings(
        tmp_path, send_queue_max_kb=QUEUE_KB, max_event_kb=128, broadcast_max_bytes=100_000,
        broadcast_rate=10_000, broadcast_burst=10_000)).start()
    yield srv
    await srv.stop()


def sample(server, name: str) -> float:
    value = server.app[METRICS].registry.get_sample_value(name)
    assert value is not None, name
    return value


async def test_a_socket_that_stops_reading_is_dropped_at_the_bound(flood_server):
    server, bound = flood_server, QUEUE_KB * 1024
    owner = await Client(server.url, "owner").connect()
    reader = await Client(server.url, "reader").connect()
    slow: RawSocket | None = None
    try:
        await owner.register(unique_email("owner"))
        await reader.register(reader_email := unique_email("reader"))
        slow_email = unique_email("slow")
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/api/auth/register",
                                 json={"email": slow_email, "password": "correct horse"}) as r:
                signed = (await r.json())["data"]
        slow_id, slow_token = signed["user"]["id"], signed["tokens"]["accessToken"]
        project = await owner.ok("project:create", {"name": "Flood"})
        pid = project["id"]
        for email in (reader_email, slow_email):
            await owner.ok("project:member:add", {"id": pid, "email": email, "role": "viewer"})
        await owner.ok("project:join", {"id": pid})
        await reader.ok("project:join", {"id": pid})
        slow = await RawSocket.connect(server.url, slow_token)
        assert (await slow.call("project:join", {"id": pid}))["ok"] is True
        assert slow.sid in server.app[REALTIME].sockets
        await owner.wait_for("project:presence", lambda d: slow_id in
                             {u["userId"] for u in d["users"]})
        owner.forget("project:presence")
        # From here on the slow client reads nothing.

        blob = "x" * BLOB
        sent = 0
        while sample(server, "collab_slow_consumers_dropped_total") == 0:
            assert sent < MAX_FLOOD, f"{sent} broadcasts and the slow socket is still there"
            await owner.ok("project:broadcast", {"id": pid, "event": "flood",
                                                 "data": {"n": sent, "blob": blob}})
            # In step with the reader, so only the slow socket's queue can build up.
            await reader.wait_for("project:broadcast", lambda d, n=sent: d["data"]["n"] == n)
            sent += 1

        # The queue filled up to the bound and never past it.
        peak = sample(server, "collab_send_queue_peak_bytes")
        assert bound - (BLOB + 1000) < peak <= bound, (peak, bound)
        # The server cut the slow client off: it sees its connection end once it reads again,
        # and the room's presence no longer lists it.
        assert await slow.until_closed() in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                             aiohttp.WSMsgType.ERROR)
        await owner.wait_for("project:presence", lambda d: slow_id not in
                             {u["userId"] for u in d["users"]})
        assert slow.sid not in server.app[REALTIME].sockets
        # Its connection is released too: the writer stuck in a send was cut loose.
        engine = server.app[REALTIME].sio.eio
        await eventually(lambda: slow.eio_sid not in engine.sockets
                         and slow.eio_sid not in engine.connections)

        # The reader in the same room keeps receiving, and only one socket was dropped.
        await owner.ok("project:broadcast", {"id": pid, "event": "after", "data": {"n": -1}})
        after = await reader.wait_for("project:broadcast", lambda d: d["event"] == "after")
        assert after["data"] == {"n": -1}
        assert reader.sio.connected and owner.sio.connected
        assert sample(server, "collab_slow_consumers_dropped_total") == 1
    finally:
        if slow is not None:
            await slow.close()
        await owner.close()
        await reader.close()
