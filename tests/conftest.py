"""Fixtures shared by the suites: settings, a real server on a real port, and clients."""
from __future__ import annotations

import pytest
from aiohttp import web

from server.app import create_app
from services.config import Settings
from tests.client import Client

TEST_SECRET = "test-secret-" + "x" * 40


UNLIMITED_SIGNUPS = {"SIGNUPS_PER_IP": "1000000", "GUESTS_PER_IP": "1000000",
                     "ANON_SOCKETS_PER_IP": "1000000", "MAX_SOCKETS_PER_IP": "1000000",
                     "MAX_SOCKETS_PER_USER": "1000000", "EVENT_RATE_READ": "1000000",
                     "EVENT_RATE_WRITE": "1000000", "EVENT_RATE_HEAVY": "1000000"}


def make_settings(tmp_path, **overrides) -> Settings:
    env = {"ENV": "test", "DATA_DIR": str(tmp_path / "data"), "BCRYPT_ROUNDS": "4",
           "JWT_SECRET": TEST_SECRET, "LOG_LEVEL": "WARNING",
           # The suite signs up many users from 127.0.0.1; the limits' own tests lower these.
           **UNLIMITED_SIGNUPS}
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


class RunningServer:
    """The real app factory behind a real TCP port (clients connect as browsers would)."""

    def __init__(self, settings: Settings, open_storage=None, clock=None):
        """``clock``: a ``services.clock.FakeClock`` to drive the server's time from the test
        (None: the system clock)."""
        self.settings = settings
        self.open_storage = open_storage
        self.clock = clock
        self.app = None
        self.runner = None
        self.url = ""

    async def start(self) -> RunningServer:
        self.app = create_app(self.settings, open_storage=self.open_storage, clock=self.clock)
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
async def server(settings):
    srv = await RunningServer(settings).start()
    yield srv
    await srv.stop()


@pytest.fixture
async def clients(server):
    """A factory of connected clients, all closed at the end of the test."""
    made: list[Client] = []

    async def make(token: str | None = None, url: str | None = None, name: str = "") -> Client:
        client = await Client(url or server.url, name).connect(token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
