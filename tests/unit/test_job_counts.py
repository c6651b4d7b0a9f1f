"""``collab_jobs`` (server/metrics.py JobCounts) over a real SQLite store on a fake clock:
read before a scrape at most every JOB_COUNTS_TTL_S, and a failing or stalled database
leaves the scrape answering with the last figures."""
from __future__ import annotations

import asyncio
import time

from prometheus_client import generate_latest

from server.metrics import JOB_COUNTS_TTL_S, JOB_COUNTS_WAIT_S, Metrics
from services.clock import FakeClock
from store.ids import new_id
from store.sqlite import SqliteStore


def jobs(metrics: Metrics, kind: str, state: str) -> float | None:
    return metrics.registry.get_sample_value("collab_jobs", {"kind": kind, "state": state})


async def test_counts_are_cached_then_read_again(tmp_path):
    store = await SqliteStore.open(tmp_path / "s.sqlite3")
    clock, metrics = FakeClock(), Metrics()
    metrics.watch_jobs({"pcap": store.pcap, "chat_import": store.chat_imports}, clock,
                       {"pcap": lambda: 3})
    try:
        assert jobs(metrics, "pcap", "queued") is None  # nothing read before a scrape
        await store.pcap.queue_job(file_id=new_id(), project_id="p", requested_by="u")
        await metrics.refresh()
        assert jobs(metrics, "pcap", "queued") == 1 and jobs(metrics, "pcap", "running") == 0
        assert jobs(metrics, "chat_import", "queued") == 0
        assert metrics.registry.get_sample_value("collab_jobs_running_here",
                                                 {"kind": "pcap"}) == 3

        await store.chat_imports.queue_job(file_id=new_id(), project_id="p", requested_by="u")
        await clock.advance(JOB_COUNTS_TTL_S - 0.5)
        await metrics.refresh()
        assert jobs(metrics, "chat_import", "queued") == 0  # still the cached read
        await clock.advance(0.5)
        await metrics.refresh()
        assert jobs(metrics, "chat_import", "queued") == 1
    finally:
        await store.close()

    # The database gone: the scrape still renders, with the last figures.
    await clock.advance(JOB_COUNTS_TTL_S)
    await metrics.refresh()
    assert jobs(metrics, "chat_import", "queued") == 1
    assert b"collab_jobs{" in generate_latest(metrics.registry)


class StalledQueue:
    """A database that does not answer (until released)."""

    def __init__(self):
        self.release = asyncio.Event()
        self.calls = 0

    async def count_jobs(self) -> dict[str, int]:
        self.calls += 1
        await self.release.wait()
        return {"queued": 7, "running": 1}


async def test_a_stalled_count_does_not_hold_the_scrape():
    clock, metrics, queue = FakeClock(), Metrics(), StalledQueue()
    metrics.watch_jobs({"pcap": queue}, clock, {})
    scrape = asyncio.ensure_future(metrics.refresh())
    second = asyncio.ensure_future(metrics.refresh())  # a concurrent scrape joins the read
    deadline = time.monotonic() + 10
    while clock.sleepers < 2:  # both scrapes wait for the read, on the clock
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)
    assert not scrape.done() and not second.done()
    await clock.advance(JOB_COUNTS_WAIT_S)
    await asyncio.wait_for(asyncio.gather(scrape, second), 5)
    assert queue.calls == 1
    assert jobs(metrics, "pcap", "queued") is None  # no figures yet, but an answer

    queue.release.set()
    await metrics.refresh()  # the read it started lands; no second read within the TTL
    await asyncio.sleep(0)
    assert jobs(metrics, "pcap", "queued") == 7 and queue.calls == 1
