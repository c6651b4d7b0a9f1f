"""Admission of new connections (issue 17, item 5; server/admission.py): at most
HANDSHAKE_CONCURRENCY sessions handshake at once, each keeping its place from its first
request until its Socket.IO CONNECT is answered; HANDSHAKE_QUEUE more wait; past that a new
session gets 503 ``unavailable`` (reason ``busy``) with Retry-After at once. /health and
connected users are served meanwhile."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from server.admission import HOLD_S
from server.drain import DRAIN
from services.clock import FakeClock
from tests.client import Client, eventually, unique_email
from tests.conftest import RunningServer, make_settings
from tests.metrics_helpers import scrape, value

WS = "/socket.io/?EIO=4&transport=websocket"
POLLING = "/socket.io/?EIO=4&transport=polling"


async def handshakes(url: str) -> dict[str, float]:
    samples = await scrape(url)
    out = {state: value(samples, "collab_handshakes", state=state)
           for state in ("in_progress", "peak", "waiting")}
    out["admitted"] = value(samples, "collab_handshake_wait_seconds_count")
    out["refused"] = value(samples, "collab_handshakes_refused_total")
    return out


async def waiting(url: str, n: int) -> bool:
    return (await handshakes(url))["waiting"] == n


async def open_packet(ws: aiohttp.ClientWebSocketResponse) -> dict:
    frame = await ws.receive_str(timeout=10)
    assert frame.startswith("0{"), frame
    return json.loads(frame[1:])


async def socketio_connect(ws: aiohttp.ClientWebSocketResponse, token: str | None) -> None:
    await ws.send_str("40" + (json.dumps({"token": token}) if token else ""))
    frame = await ws.receive_str(timeout=10)
    assert frame.startswith("40{"), frame


@dataclass
class OnePlace:
    """A server with one handshake place on a FakeClock, and raw websockets to it."""

    srv: RunningServer
    clock: FakeClock
    http: aiohttp.ClientSession
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.srv.url.replace("http", "ws") + WS

    async def opened(self, ws: aiohttp.ClientWebSocketResponse | None = None):
        """``ws`` (or a new websocket) once Engine.IO has opened on it."""
        ws = ws if ws is not None else await self.http.ws_connect(self.ws_url)
        self.sockets.append(ws)
        await open_packet(ws)
        return ws


@contextlib.asynccontextmanager
async def one_place(tmp_path) -> AsyncIterator[OnePlace]:
    clock = FakeClock()
    srv = await RunningServer(make_settings(tmp_path, handshake_concurrency=1),
                              clock=clock).start()
    place = OnePlace(srv, clock, aiohttp.ClientSession())
    try:
        yield place
    finally:
        for ws in place.sockets:
            await ws.close()
        await place.http.close()
        await srv.stop()


async def test_concurrent_handshakes_take_turns_and_all_connect(tmp_path):
    """Twelve clients at once, websocket-only and polling-first (a browser without
    ``transports``), with and without a token, on one place: every one connects and
    answers, each went through admission, and never more than one handshook at a time."""
    srv = await RunningServer(make_settings(tmp_path, handshake_concurrency=1)).start()
    first = await Client(srv.url, "first").connect()
    clients: list[Client] = [first]
    try:
        token = (await first.register(unique_email()))["tokens"]["accessToken"]
        before = await handshakes(srv.url)
        assert before["admitted"] == 1 and before["peak"] == 1

        async def one(i: int) -> Client:
            client = Client(srv.url, f"c{i}")
            clients.append(client)
            transports = ["websocket"] if i % 2 else ["polling", "websocket"]
            await client.sio.connect(srv.url, auth={"token": token} if i % 3 else None,
                                     transports=transports, wait_timeout=10)
            return client

        crowd = await asyncio.gather(*(one(i) for i in range(12)))
        for client in crowd:
            assert (await client.ok("ping"))["pong"]
        after = await eventually(lambda: _settled(srv.url))
        assert after["admitted"] == 13  # every handshake, polling ones included, queued
        assert after["peak"] == 1  # ... and none overlapped another
        assert after["refused"] == 0
    finally:
        for client in clients:
            await client.close()
        await srv.stop()


async def _settled(url: str) -> dict[str, float] | None:
    now = await handshakes(url)
    return now if now["in_progress"] == 0 and now["waiting"] == 0 else None


async def test_a_place_is_kept_until_connect_and_the_queue_overflows_with_503(tmp_path):
    """One place, two waiting. A session opened by polling (as browsers open) keeps the
    place until its CONNECT; two websocket handshakes wait meanwhile, a third and a polling
    one are answered 503 at once; /health and a connected user are served throughout. The
    CONNECT frees the place: the waiting ones then go, one after the other."""
    clock = FakeClock()  # the hold (HOLD_S) never runs out unless the test says so
    srv = await RunningServer(make_settings(tmp_path, handshake_concurrency=1,
                                            handshake_queue=2), clock=clock).start()
    online = await Client(srv.url, "online").connect()
    http = aiohttp.ClientSession()
    queued: list[asyncio.Task] = []
    try:
        token = (await online.register(unique_email()))["tokens"]["accessToken"]
        async with http.get(srv.url + POLLING) as resp:
            assert resp.status == 200
            holder = json.loads((await resp.text())[1:])["sid"]
        queued = [asyncio.create_task(http.ws_connect(srv.url.replace("http", "ws") + WS))
                  for _ in range(2)]
        await eventually(lambda: waiting(srv.url, 2))

        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(srv.url.replace("http", "ws") + WS)
        assert refused.value.status == 503
        async with http.get(srv.url + POLLING) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "1"
            error = (await resp.json())["error"]
        assert error["code"] == "unavailable" and error["details"]["reason"] == "busy"
        async with http.get(srv.url + "/health") as resp:
            assert resp.status == 200
        assert (await online.ok("ping"))["pong"]
        assert not any(task.done() for task in queued)

        session = f"{srv.url}{POLLING}&sid={holder}"
        async with http.post(session, data="40" + json.dumps({"token": token})) as resp:
            assert resp.status == 200
        async with http.get(session) as resp:
            assert (await resp.text()).startswith("40{")
        done, _ = await asyncio.wait(queued, return_when=asyncio.FIRST_COMPLETED)
        (second,) = done
        (third,) = [task for task in queued if task not in done]
        await open_packet(second.result())
        assert not third.done()  # the second holds the place until its CONNECT
        await socketio_connect(second.result(), token)
        await open_packet(await third)
        await socketio_connect(third.result(), token)

        counts = await eventually(lambda: _settled(srv.url))
        assert counts["peak"] == 1 and counts["admitted"] == 4 and counts["refused"] == 2
    finally:
        for task in queued:
            if not task.done():
                task.cancel()
            elif not task.cancelled() and task.exception() is None:
                await task.result().close()
        await http.close()
        await online.close()
        await srv.stop()


async def test_a_session_that_never_connects_or_goes_away_frees_its_place(tmp_path):
    """A websocket that opens Engine.IO and sends no CONNECT keeps its place for HOLD_S,
    not longer; one that closes frees it at once."""
    async with one_place(tmp_path) as p:
        silent = await p.opened()
        second = asyncio.create_task(p.http.ws_connect(p.ws_url))
        await eventually(lambda: waiting(p.srv.url, 1))
        await p.clock.advance(HOLD_S / 2)
        assert not second.done() and await waiting(p.srv.url, 1)
        await p.clock.advance(HOLD_S / 2)
        await p.opened(await second)
        await socketio_connect(silent, None)  # still open: the hold ended, not the session

        third = asyncio.create_task(p.http.ws_connect(p.ws_url))
        await eventually(lambda: waiting(p.srv.url, 1))
        await p.sockets[-1].close()  # the second leaves without a CONNECT
        await p.opened(await third)
        assert (await handshakes(p.srv.url))["peak"] == 1


async def test_a_refused_connect_frees_the_place(tmp_path):
    """A CONNECT refused (a bad token) ends the handshake as surely as an accepted one: the
    next session goes while the refused one's transport is still open."""
    async with one_place(tmp_path) as p:
        refused = await p.opened()
        await refused.send_str("40" + json.dumps({"token": "not-a-jwt"}))
        answer = await refused.receive_str(timeout=10)
        assert answer.startswith("44{") and json.loads(answer[2:])["data"]["code"] == \
            "unauthorized"
        await p.opened()
        await socketio_connect(refused, None)  # still open: the refusal freed the place
        assert (await handshakes(p.srv.url))["peak"] == 1


async def test_a_session_still_waiting_when_the_drain_begins_is_turned_away(tmp_path):
    """New sessions are refused at once while draining; one that was already waiting for a
    place gets the same answer when its turn comes, instead of joining a leaving instance."""
    async with one_place(tmp_path) as p:
        holder = await p.opened()
        queued = asyncio.create_task(p.http.ws_connect(p.ws_url))
        await eventually(lambda: waiting(p.srv.url, 1))
        p.srv.app[DRAIN].begin()
        await holder.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as turned_away:
            await queued
        assert turned_away.value.status == 503
        assert turned_away.value.headers["Retry-After"] == "1"
        counts = await eventually(lambda: _settled(p.srv.url))
        assert counts["admitted"] == 2 and counts["refused"] == 0
