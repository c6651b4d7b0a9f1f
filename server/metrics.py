"""Prometheus metrics of one instance (GET /metrics)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self):
        # A registry per app, so several apps in one test process do not collide.
        self.registry = CollectorRegistry()
        self.events = Counter("collab_events_total", "Socket.IO events handled",
                              ["event", "outcome"], registry=self.registry)
        self.latency = Histogram("collab_event_seconds", "Event handling time", ["event"],
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                          1, 2.5, 5), registry=self.registry)
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
