"""Idle guests expire with their data (issue 16 F: GUEST_TTL_DAYS); a guest who came back
stays. Time is a FakeClock: minutes pass in an ``advance``."""
from __future__ import annotations

from server.keys import services_of
from services.clock import FakeClock
from tests.client import Client, eventually, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload

TTL = 864.0  # GUEST_TTL_DAYS=0.01: sweeps every 36 s


async def test_idle_guests_and_their_data_go_active_ones_stay(tmp_path):
    clock = FakeClock()
    srv = await RunningServer(make_settings(tmp_path, guest_ttl_days=TTL / 86400,
                                            ticker_interval_s=3600), clock=clock).start()
    services = services_of(srv.app)
    store = services.store
    made: list[Client] = []

    async def client() -> Client:
        c = await Client(srv.url).connect()
        made.append(c)
        return c

    try:
        idle, back, host = await client(), await client(), await client()
        await idle.guest()
        await back.guest()
        await host.register(unique_email())
        own = await idle.ok("project:create", {"name": "guest's own"})
        status, body = await upload(srv.url, idle.tokens["accessToken"], own["id"], b"data")
        assert status == 201, body
        file_id = body["data"]["id"]
        blob = (await store.files.get_file(file_id)).storage_key
        private = await idle.ok("conversation:create", {"title": "mine"})
        shared = await host.ok("project:create", {"name": "host's"})
        await store.projects.set_member(shared["id"], idle.user["id"], "viewer")

        await clock.advance(0.9 * TTL)
        # The second guest comes back: a refresh counts as being seen.
        await back.ok("auth:refresh", {"refreshToken": back.tokens["refreshToken"]})
        await clock.advance(0.2 * TTL)  # the idle guest is past its TTL

        assert (await idle.wait_for("auth:revoked")) == {"reason": "expired"}
        await eventually(lambda: not idle.sio.connected)
        assert await store.users.get_user(idle.user["id"]) is None
        assert await store.projects.get_project(own["id"]) is None
        assert await store.files.get_file(file_id) is None
        assert not await services.blobs.exists(blob)
        assert await store.chat.get_conversation(private["id"]) is None
        host_project = await store.projects.get_project(shared["id"])
        assert host_project is not None
        assert [m.user_id for m in host_project.members] == [host.user["id"]]

        assert await store.users.get_user(back.user["id"]) is not None
        assert back.sio.connected and (await back.ok("auth:me"))["isGuest"]
        assert await store.users.get_user(host.user["id"]) is not None
    finally:
        for c in made:
            await c.close()
        await srv.stop()
