"""A python-socketio client that records every push, for tests and benchmarks."""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import socketio


class Client:
    def __init__(self, url: str, name: str = ""):
        self.url = url
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False, request_timeout=10)
        self.pushes: dict[str, list] = defaultdict(list)
        self.arrivals: list[tuple[str, object]] = []  # every push, in the order it came
        self._waiters: list[tuple[str, object, asyncio.Future]] = []
        self.user: dict | None = None
        self.tokens: dict | None = None

        @self.sio.on("*")
        async def _any(event, *args):
            data = args[0] if args else None
            self.pushes[event].append(data)
            self.arrivals.append((event, data))
            for waiter in list(self._waiters):
                name, pred, fut = waiter
                if name == event and not fut.done() and (pred is None or pred(data)):
                    fut.set_result(data)
                    self._waiters.remove(waiter)

    async def connect(self, token: str | None = None, **kwargs) -> Client:
        auth = {"token": token} if token else None
        await self.sio.connect(self.url, auth=auth, transports=["websocket"], wait_timeout=10,
                               **kwargs)
        return self

    async def call(self, event: str, data=None, timeout: float = 10):
        if data is None:
            return await self.sio.call(event, timeout=timeout)
        return await self.sio.call(event, data, timeout=timeout)

    async def ok(self, event: str, data=None, timeout: float = 10):
        """Call and insist on success; returns the ack's data."""
        ack = await self.call(event, data, timeout)
        assert ack["ok"], f"{self.name} {event} {data!r} failed: {ack}"
        return ack["data"]

    async def err(self, event: str, data=None, timeout: float = 10) -> dict:
        ack = await self.call(event, data, timeout)
        assert not ack["ok"], f"{event} unexpectedly succeeded: {ack}"
        return ack["error"]

    def forget(self, *events: str) -> None:
        """Drop recorded pushes so a later wait_for only sees new ones."""
        for event in events or list(self.pushes):
            self.pushes.pop(event, None)

    def wait_for(self, event: str, pred=None, timeout: float = 10):
        """The first push of ``event`` matching ``pred``, already received or still to come."""
        for data in self.pushes.get(event, []):
            if pred is None or pred(data):
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(data)
                return asyncio.wait_for(fut, timeout)
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((event, pred, fut))
        return asyncio.wait_for(fut, timeout)

    async def register(self, email: str, password: str = "correct horse", **extra) -> dict:
        out = await self.ok("auth:register", {"email": email, "password": password, **extra})
        self.user, self.tokens = out["user"], out["tokens"]
        return out

    async def guest(self) -> dict:
        out = await self.ok("auth:guest")
        self.user, self.tokens = out["user"], out["tokens"]
        return out

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


async def eventually(check, timeout: float = 10, interval: float = 0.05):
    """Poll ``check`` (sync or async) until it returns truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def unstamped(push: dict) -> dict:
    """A room push without its delivery stamp (``room``/``seq``/``epoch``, docs/DELIVERY.md)."""
    return {k: v for k, v in push.items() if k not in ("room", "seq", "epoch")}


_counter = 0


def unique_email(prefix: str = "user") -> str:
    global _counter
    _counter += 1
    return f"{prefix}{_counter}-{time.time_ns() % 10**9}@example.com"
