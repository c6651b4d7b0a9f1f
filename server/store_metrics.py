"""Latency of every store operation, like Synapse's per-transaction timings.

``measure_store`` wraps an open store once, where the app opens it: each repository
(``store.users``, ``store.pcap``…) becomes a proxy whose public coroutine methods observe
their elapsed time in ``collab_store_seconds{op="users.get_user"}`` and count their
failures in ``collab_store_errors_total{op, error}``; everything else (attributes such as
``backend`` and ``db``, synchronous methods) is read through from the real object. No backend
method is touched, so both backends and any new method are measured alike.

The label children are resolved once per method when the proxy is built, so a call costs two
``perf_counter`` reads and one ``Histogram.observe`` (the micro-benchmark in
``tests/unit/test_store_metrics.py`` prints the figure).
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram

from store.base import Store
from store.errors import EventError


def error_label(exc: BaseException) -> str:
    """A bounded label for a failure: the product's error code, else the exception's class."""
    if isinstance(exc, EventError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return type(exc).__name__


def _timed(method: Callable[..., Awaitable[Any]], op: str, seconds: Histogram,
           errors: Counter) -> Callable[..., Awaitable[Any]]:
    observe = seconds.labels(op).observe
    clock = time.perf_counter

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return await method(*args, **kwargs)
        except BaseException as exc:
            errors.labels(op, error_label(exc)).inc()
            raise
        finally:
            observe(clock() - started)

    return call


class MeasuredRepo:
    """A repository whose public coroutine methods are timed (bound once, here); any other
    attribute is the real repository's."""

    def __init__(self, repo: object, name: str, seconds: Histogram, errors: Counter):
        self._repo = repo
        self._name = name
        for attr, _ in inspect.getmembers(type(repo), inspect.iscoroutinefunction):
            if not attr.startswith("_"):
                setattr(self, attr, _timed(getattr(repo, attr), f"{name}.{attr}", seconds,
                                           errors))

    def __getattr__(self, attr: str) -> Any:  # only called for what __init__ did not bind
        if attr == "_repo":  # not set yet (a copy being made): no recursion
            raise AttributeError(attr)
        return getattr(self._repo, attr)

    def __repr__(self) -> str:
        return f"<measured {self._name}: {self._repo!r}>"


class MeasuredStore(Store):
    """The store with every repository measured; ``inner`` is the real one (its other
    attributes, e.g. ``db``, read through)."""

    def __init__(self, inner: Store, seconds: Histogram, errors: Counter):
        self.inner = inner
        self.backend = inner.backend
        for name in repository_names():
            setattr(self, name, MeasuredRepo(getattr(inner, name), name, seconds, errors))

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def repository_names() -> list[str]:
    """The repositories ``Store`` declares (every annotated attribute but ``backend``)."""
    return [name for name in Store.__annotations__ if name != "backend"]


def measure_store(store: Store, seconds: Histogram, errors: Counter) -> Store:
    return store if isinstance(store, MeasuredStore) else MeasuredStore(store, seconds, errors)
