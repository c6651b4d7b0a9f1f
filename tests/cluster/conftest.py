"""Fixtures for multi-instance tests: real redis-server, N real server processes, nginx."""
from __future__ import annotations

import pytest

from tests.client import Client
from tests.cluster.harness import Cluster

FAST = {"BCRYPT_ROUNDS": "4", "PRESENCE_TTL_S": "3", "LOG_LEVEL": "INFO",
        "TRUSTED_PROXIES": "127.0.0.2/32"}


@pytest.fixture(scope="module")
def cluster():
    """Shared by a module's tests that do not kill instances (they use distinct users)."""
    with Cluster(n=2, extra_env=FAST) as c:
        yield c


@pytest.fixture
def fresh_cluster():
    """For tests that kill instances."""
    with Cluster(n=2, extra_env=FAST) as c:
        yield c


@pytest.fixture
async def connect():
    made: list[Client] = []

    async def make(url: str, token: str | None = None, name: str = "") -> Client:
        client = await Client(url, name).connect(token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def dump_logs(cluster) -> str:
    return cluster.logs(60)
