"""Draining one instance in-process (the SIGTERM path without the signal; the cluster test
tests/cluster/test_drain_cluster.py covers the move through nginx): /ready and new
handshakes answer 503 at once, connected clients are told and their transports cut one at a
time over the window."""
from __future__ import annotations

import aiohttp
import pytest
import socketio

from server.drain import DRAIN
from tests.client import Client, eventually, unique_email
from tests.conftest import RunningServer, make_settings


async def test_drain_refuses_newcomers_and_moves_everyone_off(tmp_path):
    srv = await RunningServer(make_settings(tmp_path, drain_timeout_s=1)).start()
    clients = [await Client(srv.url, f"c{i}").connect() for i in range(3)]
    try:
        await clients[0].register(unique_email())
        drain = srv.app[DRAIN]
        drain.begin()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/ready") as r:
                assert r.status == 503 and (await r.json())["status"] == "draining"
            async with http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling") as r:
                assert r.status == 503 and r.headers["Retry-After"] == "1"
        late = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await late.connect(srv.url, transports=["websocket"])
        await late.disconnect()
        for c in clients:
            pushed = await c.wait_for("server:draining", timeout=5)
            assert 0 <= pushed["reconnectInMs"] <= 800
        offsets = sorted(c.pushes["server:draining"][0]["reconnectInMs"] for c in clients)
        assert offsets[0] == 0 and offsets[-1] > offsets[0]  # spread, not all at once
        await eventually(lambda: not any(c.sio.connected for c in clients), timeout=5)
        await eventually(drain.done.is_set, timeout=5)
        drain.begin()  # a second request changes nothing in-process
    finally:
        for c in clients:
            await c.close()
        await srv.stop()
