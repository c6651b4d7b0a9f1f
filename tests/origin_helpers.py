"""Raw Engine.IO handshakes with a chosen Origin, shared by single-instance and nginx tests."""
from __future__ import annotations

import aiohttp

EVIL = "http://evil.example"


async def handshake(url: str, origin: str | None = None,
                    headers: dict | None = None) -> int | str:
    """A websocket handshake: the HTTP status it was refused with, or the Engine.IO OPEN
    packet it was answered with."""
    ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(ws_url, origin=origin, headers=headers) as ws:
                msg = await ws.receive(timeout=10)
                return msg.data
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def opened(answer: int | str) -> bool:
    return isinstance(answer, str) and answer.startswith('0{"sid"')
