"""Prometheus metrics of one instance (GET /metrics).

What an operator watches (README "Metrics" lists every series): event latency, store
operation latency (``server/store_metrics.py``), sockets and rooms, the Redis bus's
publish→receive lag (``services/bus_probe.py``), job queues, and a chat reply's time to its
first delta. Gauges that describe state (sockets, rooms, jobs) are read when Prometheus
scrapes, not kept up to date on every event.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.clock import Clock
from store.base import JobQueue

log = logging.getLogger("server.metrics")

FAST_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)
STORE_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5,
                 5, 10)
WAIT_BUCKETS = (.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
FIRST_DELTA_BUCKETS = (.01, .025, .05, .1, .25, .5, 1, 2, 3, 5, 8, 13, 21, 30, 60)
JOB_STATES = ("queued", "running")
JOB_COUNTS_TTL_S = 5.0  # a scrape reads the store at most this often
JOB_COUNTS_WAIT_S = 2.0  # a scrape waits this long for the read, then shows the last figures


class Metrics:
    def __init__(self):
        # A registry per app, so several apps in one test process do not collide.
        self.registry = CollectorRegistry()
        self.events = Counter("collab_events_total", "Socket.IO events handled",
                              ["event", "outcome"], registry=self.registry)
        self.latency = Histogram("collab_event_seconds", "Event handling time", ["event"],
                                 buckets=FAST_BUCKETS, registry=self.registry)
        self.sockets = Gauge("collab_sockets", "Connected sockets on this instance",
                             registry=self.registry)
        self.users = Gauge("collab_authenticated_sockets", "Authenticated sockets",
                           registry=self.registry)
        self.slow_consumers = Counter(
            "collab_slow_consumers_dropped_total",
            "Sockets disconnected because their send queue reached SEND_QUEUE_MAX_KB",
            registry=self.registry)
        self.send_queue_peak = Gauge(
            "collab_send_queue_peak_bytes",
            "Most bytes of messages queued for one socket on this instance since start",
            registry=self.registry)
        self.store_seconds = Histogram(
            "collab_store_seconds", "Store operation time, by repository.method", ["op"],
            buckets=STORE_BUCKETS, registry=self.registry)
        self.store_errors = Counter(
            "collab_store_errors_total",
            "Store operations that raised, by repository.method and error code or class",
            ["op", "error"], registry=self.registry)
        self.bus_lag = Histogram(
            "collab_bus_lag_seconds",
            "Redis bus publish to receive time of this instance's own probe messages",
            buckets=FAST_BUCKETS, registry=self.registry)
        self.bus_probes_lost = Counter(
            "collab_bus_probes_lost_total",
            "Bus probe messages that did not come back within their timeout",
            registry=self.registry)
        self.chat_first_delta = Histogram(
            "collab_chat_first_delta_seconds",
            "From a reply's start (its exchange stored) to its first delta pushed to this "
            "instance's sockets", buckets=FIRST_DELTA_BUCKETS, registry=self.registry)
        self.chat_early = Counter(
            "collab_chat_early_requests_total",
            "Provider requests started with their exchange's write (services/replies.py): "
            "kept, rebuilt (the write read another history) or dropped (the write refused)",
            ["outcome"], registry=self.registry)
        self.handshakes_refused = Counter(
            "collab_handshakes_refused_total",
            "New connections answered 503 busy: HANDSHAKE_QUEUE were already waiting",
            registry=self.registry)
        self.handshake_wait = Histogram(
            "collab_handshake_wait_seconds",
            "How long a new connection waited for a handshake place (HANDSHAKE_CONCURRENCY)",
            buckets=WAIT_BUCKETS, registry=self.registry)
        self.handshakes = Gauge(
            "collab_handshakes", "New connections handshaking now (in_progress), the most ever "
            "at once (peak), and those waiting for a place (waiting)", ["state"],
            registry=self.registry)
        self.jobs_running_here = Gauge(
            "collab_jobs_running_here", "Jobs running on this instance, by kind", ["kind"],
            registry=self.registry)
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        self._counters: dict[tuple[str, str], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def observe(self, event: str, outcome: str, seconds: float) -> None:
        # labels() hashes and locks on every call; the children are cached per name.
        key = (event, outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.events.labels(event, outcome)
        histogram = self._histograms.get(event)
        if histogram is None:
            histogram = self._histograms[event] = self.latency.labels(event)
        counter.inc()
        histogram.observe(seconds)

    # -- read at scrape time ------------------------------------------------------------

    def watch_sockets(self, manager_of: Callable[[], Any]) -> None:
        """Sockets per namespace and rooms per kind, from the Socket.IO manager's room table
        (``manager_of()``) when scraped."""
        self.registry.register(RoomsCollector(manager_of))

    def watch_admission(self, in_progress: Callable[[], int], peak: Callable[[], int],
                        waiting: Callable[[], int]) -> None:
        for state, read in (("in_progress", in_progress), ("peak", peak), ("waiting", waiting)):
            self.handshakes.labels(state).set_function(read)

    def watch_jobs(self, queues: Mapping[str, JobQueue], clock: Clock,
                   running_here: Mapping[str, Callable[[], int]]) -> None:
        """Queued and running jobs of each kind, everywhere (the store's indexed counts, at
        most every JOB_COUNTS_TTL_S) and here (the engines' own tables)."""
        jobs = JobCounts(queues, clock)
        self.registry.register(jobs)
        self._refreshers.append(jobs.refresh)
        for kind, count in running_here.items():
            self.jobs_running_here.labels(kind).set_function(count)

    async def refresh(self) -> None:
        """Before a scrape: bring the cached, store-backed figures up to date."""
        for refresh in self._refreshers:
            await refresh()


class RoomsCollector(Collector):
    def __init__(self, manager_of: Callable[[], Any]):
        self.manager_of = manager_of

    def collect(self) -> Iterable[Metric]:
        sockets = GaugeMetricFamily("collab_namespace_sockets",
                                    "Sockets connected to this instance, by namespace",
                                    labels=["namespace"])
        rooms = GaugeMetricFamily(
            "collab_rooms", "Rooms with members on this instance, by namespace and kind "
            "(a room 'project:<id>:owners' is of kind 'project:owners')",
            labels=["namespace", "kind"])
        # Runs on the event loop (the /metrics handler), so the table cannot change under us.
        # The default namespace's socket count is always there (0 when nobody is connected):
        # a series that vanishes when idle reads as "no data" on a dashboard, not as zero.
        tables = {"/": {}, **self.manager_of().rooms}
        for namespace, table in tables.items():
            connected = table.get(None, {})
            sockets.add_metric([namespace], len(connected))
            kinds: collections.Counter[str] = collections.Counter()
            for name, members in table.items():
                # None holds every socket, and each socket has a room named by its sid.
                if name is None or name in connected or not members:
                    continue
                kinds[room_kind(str(name))] += 1
            for kind, count in sorted(kinds.items()):
                rooms.add_metric([namespace, kind], count)

        return [sockets, rooms]


def room_kind(name: str) -> str:
    """The room's name without its ids: 'project:<id>' → 'project', 'project:<id>:owners'
    → 'project:owners' (rooms are named kind:id[:part])."""
    parts = name.split(":")
    return ":".join(parts[0:1] + parts[2:3])


class JobCounts(Collector):
    """``collab_jobs{kind, state}``: the store's counts of queued and running jobs (every
    instance's), cached for JOB_COUNTS_TTL_S so frequent scrapes cost one indexed count per
    kind and state at most that often. A failing or slow count (a database in trouble) keeps
    the last figures: the scrape still answers, with everything else in it."""

    def __init__(self, queues: Mapping[str, JobQueue], clock: Clock,
                 ttl: float = JOB_COUNTS_TTL_S):
        self.queues = dict(queues)
        self.clock = clock
        self.ttl = ttl
        self.counts: dict[str, dict[str, int]] = {}
        self._read_at: float | None = None
        self._reading: asyncio.Future | None = None

    async def refresh(self) -> None:
        if self._read_at is not None and self.clock.monotonic() - self._read_at < self.ttl:
            return
        if self._reading is None or self._reading.done():  # concurrent scrapes share one
            self._reading = asyncio.ensure_future(self._read())
        patience = asyncio.ensure_future(self.clock.sleep(JOB_COUNTS_WAIT_S))
        try:
            await asyncio.wait([self._reading, patience], return_when=asyncio.FIRST_COMPLETED)
        finally:
            patience.cancel()

    async def _read(self) -> None:
        try:
            self.counts = {kind: await queue.count_jobs() for kind, queue in self.queues.items()}
            self._read_at = self.clock.monotonic()
        except Exception:
            log.exception("counting jobs for /metrics failed")

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "collab_jobs", "Jobs queued and running on every instance, by kind (read from "
            "the store at most every few seconds)", labels=["kind", "state"])
        for kind, counts in self.counts.items():
            for state in JOB_STATES:
                family.add_metric([kind, state], counts.get(state, 0))
        return [family]
