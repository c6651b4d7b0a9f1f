"""The measuring proxy (server/store_metrics.py) on every backend: each repository's every
public coroutine method is timed as ``repo.method``; failures are counted by code; all else
reads through to the real store."""
from __future__ import annotations

import asyncio
import inspect
import typing

import pytest
from prometheus_client import CollectorRegistry

from server.metrics import Metrics
from server.store_metrics import MeasuredStore, measure_store, repository_names
from store import base
from store.base import Store


@pytest.fixture
def metrics():
    return Metrics()


@pytest.fixture
def measured(store, metrics):
    return measure_store(store, metrics.store_seconds, metrics.store_errors)


def count(registry: CollectorRegistry, op: str) -> float:
    return registry.get_sample_value("collab_store_seconds_count", {"op": op}) or 0.0


def errors(registry: CollectorRegistry, op: str, error: str) -> float:
    return registry.get_sample_value("collab_store_errors_total",
                                     {"op": op, "error": error}) or 0.0


def test_every_repository_method_of_the_interface_is_timed(store, measured):
    hints = typing.get_type_hints(Store, vars(base))
    names = repository_names()
    assert set(names) == {n for n, t in hints.items() if inspect.isclass(t)
                          and issubclass(t, base.ABC) and t is not Store}
    assert {"users", "projects", "pcap", "chat_imports", "stats"} <= set(names)
    for name in names:
        interface = hints[name]
        declared = {m for m, f in inspect.getmembers(interface, inspect.iscoroutinefunction)
                    if not m.startswith("_")}
        assert declared, name
        timed = set(vars(getattr(measured, name)))
        assert declared <= timed, (name, declared - timed)
        # The backend's own public coroutines too (a method it adds is measured as well).
        real = getattr(store, name)
        assert {m for m, _ in inspect.getmembers(type(real), inspect.iscoroutinefunction)
                if not m.startswith("_")} <= timed


def test_everything_else_reads_through(store, measured):
    assert isinstance(measured, Store) and isinstance(measured, MeasuredStore)
    assert measured.backend == store.backend
    assert measured.inner is store
    assert measured.db is store.db  # both backends keep a db handle
    for name in repository_names():  # a repository's own state, e.g. its db or table
        real = getattr(store, name)
        assert vars(real), name
        for attr, held in vars(real).items():
            assert getattr(getattr(measured, name), attr) is held
    # Wrapping twice is a no-op (a store handed to two apps stays measured once).
    metrics = Metrics()
    assert measure_store(measured, metrics.store_seconds, metrics.store_errors) is measured


async def test_calls_and_failures_are_observed(measured, metrics):
    reg = metrics.registry
    user = await measured.users.create_user(email="m@example.com", username="m",
                                            password_hash="x")
    assert (await measured.users.get_user(user.id)).username == "m"
    assert await measured.users.get_user("missing") is None
    assert count(reg, "users.create_user") == 1 and count(reg, "users.get_user") == 2
    assert reg.get_sample_value("collab_store_seconds_sum", {"op": "users.get_user"}) > 0

    with pytest.raises(Exception) as raised:
        await measured.users.create_user(email="M@example.com", username="other",
                                         password_hash="x")
    assert getattr(raised.value, "code", None) == "conflict"
    assert count(reg, "users.create_user") == 2  # a failure is timed too
    assert errors(reg, "users.create_user", "conflict") == 1

    # A concrete method of the interface (list_files calls list_files_in inside the real
    # repository) counts once, under its own name.
    await measured.files.list_files("p1")
    assert count(reg, "files.list_files") == 1 and count(reg, "files.list_files_in") == 0


async def test_a_cancelled_call_is_counted_as_cancelled(measured, metrics):
    started = asyncio.Event()
    real = measured.inner.users

    class Slow:
        async def get_user(self, user_id):
            started.set()
            await asyncio.Event().wait()

    measured.inner.users = Slow()
    try:
        slow = MeasuredStore(measured.inner, metrics.store_seconds, metrics.store_errors)
        task = asyncio.ensure_future(slow.users.get_user("u"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        measured.inner.users = real
    assert errors(metrics.registry, "users.get_user", "cancelled") == 1
