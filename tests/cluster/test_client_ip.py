"""The per-address login limit holds in the documented deployment: behind nginx (which
appends to X-Forwarded-For), an address a client writes into the header itself is never
taken as theirs — for REST logins and Socket.IO handshakes alike."""
from __future__ import annotations

import aiohttp

from tests.client import Client, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster

LIMIT = 5


async def test_rotating_x_forwarded_for_does_not_escape_the_per_ip_limit():
    with Cluster(n=2, extra_env={**FAST, "LOGIN_MAX_ATTEMPTS_IP": str(LIMIT)}) as cluster:
        statuses = []
        async with aiohttp.ClientSession() as http:
            for i in range(LIMIT + 3):
                forged = {"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.{i}"}
                async with http.post(f"{cluster.url}/api/auth/login", headers=forged,
                                     json={"email": unique_email("x"),
                                           "password": "wrong password"}) as r:
                    statuses.append(r.status)
        assert statuses[:LIMIT] == [401] * LIMIT and statuses[LIMIT:] == [429] * 3, statuses

        # Over Socket.IO through nginx the same address is counted: already over the limit.
        c = await Client(cluster.url, "forger").connect(
            headers={"X-Forwarded-For": "192.0.2.77"})
        try:
            err = await c.err("auth:login", {"email": unique_email("y"),
                                             "password": "wrong password"})
            assert err["code"] == "rate_limited", err
        finally:
            await c.close()
