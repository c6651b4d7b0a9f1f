"""Sign-in and sign-up limits (issue 16 E, F): guessing is stopped, the owner is not locked
out, sign-ups and anonymous sockets are bounded. Addresses are told apart the way a
deployment does: the server trusts 127.0.0.1 as its proxy and reads X-Forwarded-For."""
from __future__ import annotations

import asyncio

import pytest
import socketio

from services.clock import FakeClock
from tests.client import Client, eventually, unique_email
from tests.conftest import RunningServer, make_settings

PASSWORD = "correct horse"


@pytest.fixture
async def start(tmp_path):
    servers: list[RunningServer] = []
    clients: list[Client] = []

    async def make(clock=None, **overrides):
        srv = await RunningServer(make_settings(tmp_path / str(len(servers)),
                                                trusted_proxies="127.0.0.1/32", **overrides),
                                  clock=clock).start()
        servers.append(srv)

        async def client(ip: str = "10.0.0.1", token: str | None = None) -> Client:
            c = await Client(srv.url).connect(token, headers={"X-Forwarded-For": ip})
            clients.append(c)
            return c

        return srv, client

    yield make
    for c in clients:
        await c.close()
    for srv in servers:
        await srv.stop()


async def login(c: Client, email: str, password: str = PASSWORD) -> dict:
    return await c.call("auth:login", {"email": email, "password": password})


async def test_one_address_is_stopped_for_the_account_and_the_owner_elsewhere_is_not(start):
    srv, client = await start(login_max_failures_ip=3, login_max_failures=100)
    email = unique_email()
    await (await client("10.0.0.9")).register(email, PASSWORD)
    attacker = await client("10.6.6.6")
    for _ in range(3):
        assert (await login(attacker, email, "wrong guess"))["error"]["code"] == "unauthorized"
    refused = await login(attacker, email)  # even the right password, from there
    assert refused["error"]["code"] == "rate_limited"
    assert refused["error"]["details"]["retryAfter"] > 0
    owner = await client("10.0.0.2")
    assert (await login(owner, email))["ok"]

    entries = (await services(srv).store.audit.list_entries(limit=20)).items
    failed = [e for e in entries if e.kind == "login_failed"]
    assert len(failed) == 3 and {e.ip for e in failed} == {"10.6.6.6"}
    assert failed[0].target_id is not None  # the account attacked, when it exists
    assert [e.ip for e in entries if e.kind == "login_blocked"] == ["10.6.6.6"]


def services(srv: RunningServer):
    from server.keys import services_of
    return services_of(srv.app)


async def test_many_addresses_get_a_growing_delay_not_a_refusal(start):
    clock = FakeClock()
    srv, client = await start(clock=clock, login_max_failures_ip=2, login_max_failures=3,
                              login_max_delay_s=8)
    email = unique_email()
    await (await client("10.0.0.9")).register(email, PASSWORD)
    for i in range(3):
        c = await client(f"10.1.0.{i}")
        assert (await login(c, email, "wrong"))["error"]["code"] == "unauthorized"
    # Past the threshold: the first attempt takes the free slot at once (a 1 s queue)...
    c = await client("10.1.1.1")
    assert (await login(c, email, "wrong"))["error"]["code"] == "unauthorized"
    # ...the next waits for its slot, then is checked like any other: the owner gets in.
    owner = await client("10.0.0.2")
    sleepers = clock.sleepers
    pending = asyncio.ensure_future(login(owner, email))
    await eventually(lambda: clock.sleepers > sleepers)
    assert not pending.done()
    await clock.advance(1.0)
    assert (await pending)["ok"]


async def test_a_flooded_queue_answers_retry_after_and_a_known_address_skips_it(start):
    clock = FakeClock()
    srv, client = await start(clock=clock, login_max_failures_ip=1, login_max_failures=2,
                              login_max_delay_s=4)
    email = unique_email()
    home = await client("10.0.0.9")
    await home.register(email, PASSWORD)
    assert (await login(home, email))["ok"]  # 10.0.0.9 is now a known address
    for i in range(2):  # reach the account's threshold
        c = await client(f"10.2.0.{i}")
        assert (await login(c, email, "wrong"))["error"]["code"] == "unauthorized"
    # A burst from many addresses queues 1 s apart; what would wait past 4 s is refused.
    burst = [await client(f"10.2.1.{i}") for i in range(6)]
    sleepers = clock.sleepers
    attempts = [asyncio.ensure_future(login(c, email, "wrong")) for c in burst]
    # Each takes a slot (the first at once, then 1 s apart, wider as failures land) or, past
    # 4 s of queue, is refused at once: wait until every one is answered or parked.
    await eventually(lambda: sum(t.done() for t in attempts) + clock.sleepers - sleepers
                     >= len(attempts))
    refused = [t.result() for t in attempts if t.done() and not t.result()["ok"]
               and t.result()["error"]["code"] == "rate_limited"]
    assert refused and all(r["error"]["details"]["retryAfter"] > 4 for r in refused)
    assert clock.sleepers > sleepers  # and the others wait their turn
    # The owner's usual address is not queued at all.
    assert (await login(await client("10.0.0.9"), email))["ok"]
    await clock.advance(10)
    codes = sorted(out["error"]["code"] for out in await asyncio.gather(*attempts))
    assert codes == ["rate_limited"] * len(refused) + ["unauthorized"] * (6 - len(refused))


async def test_sign_ups_and_guests_are_limited_per_address(start):
    srv, client = await start(signups_per_ip=2, guests_per_ip=1)
    c = await client("10.3.0.1")
    for _ in range(2):
        await c.ok("auth:register", {"email": unique_email(), "password": PASSWORD})
    err = await c.err("auth:register", {"email": unique_email(), "password": PASSWORD})
    assert err["code"] == "rate_limited" and err["details"]["retryAfter"] > 0
    await c.ok("auth:guest")
    assert (await c.err("auth:guest"))["code"] == "rate_limited"
    other = await client("10.3.0.2")
    await other.ok("auth:register", {"email": unique_email(), "password": PASSWORD})
    await other.ok("auth:guest")


async def test_sockets_that_do_not_sign_in_are_closed(start):
    clock = FakeClock()
    srv, client = await start(clock=clock, auth_timeout_s=30)
    idle = await client("10.4.0.1")
    signed = await client("10.4.0.2")
    await signed.register(unique_email())
    await clock.advance(31)
    await eventually(lambda: not idle.sio.connected)
    assert signed.sio.connected and (await signed.ok("auth:me"))
    # Signing out starts the count again.
    await signed.ok("auth:logout")
    await clock.advance(31)
    await eventually(lambda: not signed.sio.connected)


async def refusal(srv: RunningServer, ip: str, token: str | None = None) -> dict:
    """The connect_error data of a connection the server refuses."""
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list = []
    sio.on("connect_error", lambda data: refusals.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(srv.url, auth={"token": token} if token else None,
                          headers={"X-Forwarded-For": ip}, transports=["websocket"])
    await sio.disconnect()
    assert refusals, "refused without connect_error data"
    return refusals[0]["data"]  # SPEC §2: {code, message} under "data"


async def test_anonymous_sockets_are_capped_per_address(start):
    srv, client = await start(anon_sockets_per_ip=2)
    first, second = await client("10.5.0.1"), await client("10.5.0.1")
    assert (await refusal(srv, "10.5.0.1"))["code"] == "rate_limited"
    await client("10.5.0.2")  # another address is not affected
    token = (await first.register(unique_email()))["tokens"]["accessToken"]
    await client("10.5.0.1")  # first signed in: a place is free again
    await client("10.5.0.1", token=token)  # signed-in sockets do not count
    await second.close()
    await client("10.5.0.1")
