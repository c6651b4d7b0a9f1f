"""Socket.IO handshakes in the documented deployment (ENV=production behind nginx): a page
on another site cannot open a socket, the console's own origin can — through nginx, whose
Host and X-Forwarded-Proto make the instances see the origin the browser used, and directly."""
from __future__ import annotations

import base64
import os

from tests.client import Client, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster
from tests.origin_helpers import EVIL, handshake, opened

PRODUCTION = {**FAST, "ENV": "production",
              "SECRETS_KEY": base64.b64encode(os.urandom(32)).decode()}


async def test_handshake_origin_is_checked_through_nginx_and_directly():
    with Cluster(n=2, extra_env=PRODUCTION) as cluster:
        public = cluster.url  # nginx
        assert opened(await handshake(public, origin=public))
        assert await handshake(public, origin=EVIL) == 400
        # nginx says the scheme (X-Forwarded-Proto: http): an https page is another origin.
        assert await handshake(public, origin=public.replace("http:", "https:")) == 400
        # The instance's own address is not the public origin.
        direct = cluster.instances[0].url
        assert await handshake(public, origin=direct) == 400

        assert opened(await handshake(direct, origin=direct))
        assert await handshake(direct, origin=EVIL) == 400
        assert await handshake(direct, origin=public) == 400

        # Clients that are not browsers send no Origin: they connect and sign in as before.
        client = await Client(public, "no-origin").connect()
        try:
            await client.register(unique_email("cli"))
            assert (await client.ok("auth:me"))["id"] == client.user["id"]
        finally:
            await client.close()
