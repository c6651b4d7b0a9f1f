"""How a reply's text becomes pushes: the engine on a real SQLite store, with a provider
that hands over a long burst without ever waiting (as the SDK does with events it already
holds) and a recording stand-in for the Socket.IO server."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from services.ai import Final, Provider
from services.clock import SystemClock
from services.leader import LocalLeader
from services.replay import Delivery
from services.replies import SLICE_S, ReplyEngine
from store.factory import open_store
from tests.conftest import make_settings

PIECES = [f"p{i} " for i in range(100_000)]


class Burst(Provider):
    name, model = "burst", "burst-1"

    async def reply(self, request, on_text):
        self.began = time.perf_counter()
        for piece in PIECES:
            await on_text(piece)
        self.ended = time.perf_counter()
        return Final(stop_reason="end_turn", model=self.model)


class Recorder:
    def __init__(self):
        self.pushes: list[tuple[str, dict]] = []

    async def emit(self, event, data, to=None, **_):
        self.pushes.append((event, data))
        await asyncio.sleep(0)  # a real push waits for the socket and Redis


async def test_a_burst_goes_out_in_few_pushes_without_holding_the_loop(tmp_path):
    settings = make_settings(tmp_path)
    store = await open_store(data_dir=tmp_path / "data")
    sio = Recorder()
    clock = SystemClock()
    services = SimpleNamespace(settings=settings, store=store, clock=clock,
                               gateway=SimpleNamespace(sio=sio),
                               delivery=Delivery(sio, clock, max_events=100_000, window_s=60))
    provider = Burst()
    engine = ReplyEngine(services, provider, LocalLeader("chat", "i"))
    user = await store.users.create_user(email="a@example.com", username="a",
                                         password_hash=None)
    conv = await store.chat.create_conversation(owner_id=user.id, project_id=None)
    exchange = await store.chat.start_exchange(
        conv.id, author_id=user.id, content="go", attachments=[], instance="i",
        lease_until=engine.lease_until())

    ticks: list[float] = []

    async def ticker():
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    live = engine.begin(conv, exchange, [], [])
    await live.task
    other.cancel()
    began, took = provider.began, provider.ended - provider.began
    await store.close()

    events = [e for e, _ in sio.pushes]
    assert events[0] == "message:started" and "message:done" in events
    deltas = [d for e, d in sio.pushes if e == "message:delta"]
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert "".join(d["text"] for d in deltas) == "".join(PIECES)
    # The first piece, the one a user waits for, goes out alone and at once.
    assert deltas[0]["text"] == PIECES[0]
    # The rest is coalesced: a push per slice of the burst, not per piece or two.
    assert len(deltas) <= 3 + took / SLICE_S, (len(deltas), took)  # + the first and the last
    assert len(deltas) < len(PIECES) / 20
    # ...and the loop was not held for the burst: others ran all along, not only before
    # and after it.
    during = [began, *(t for t in ticks if began < t < began + took), began + took]
    longest = max(b - a for a, b in zip(during, during[1:]))
    assert longest < took / 2, (longest, took)
