"""The app factory: one aiohttp application with its Socket.IO server attached.

Each long-lived resource has one cleanup context that opens it and closes it (aiohttp's
``cleanup_ctx``): Redis and the bus, the store, then the services container (built once
every resource is open), then each domain engine's own start and stop.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

import handlers
from server import admission, drain, http, web_security
from server.heap import trim_loop
from server.keys import METRICS, REALTIME, SETTINGS, STORAGE, services_of
from server.metrics import Metrics
from server.realtime import Realtime
from server.redis_manager import RedisManager
from server.store_metrics import measure_store
from services.accounts import Housekeeping
from services.ai import make_provider
from services.bus import Bus, RedisBus
from services.bus_probe import BusProbe
from services.captures import PcapService
from services.cascade import attach_project_cascade
from services.chat_imports import ChatImportService
from services.clock import Clock, SystemClock
from services.config import Settings, resolve_jwt_secret, resolve_secrets_key
from services.container import Core, Hooks, Services
from services.crypto import SecretBox
from services.idempotency import MemoryLedger, RedisLedger, Requests
from services.instances import InstanceRegistry
from services.leader import make_leader
from services.locks import LockService, MemoryLocks, RedisLocks
from services.presence import MemoryPresence, Presence, RedisPresence
from services.ratelimit import (
    Counter,
    MemoryCounter,
    MemoryEventLimiter,
    RedisCounter,
    RedisEventLimiter,
)
from services.redis_client import OutageLog, open_redis
from services.replay import Delivery
from services.replies import ReplyEngine
from services.security import PasswordHasher, TokenService
from services.sessions import Sessions
from services.signin import SignInGuard
from services.ticker import Ticker
from store.base import Store
from store.blobs import BlobStore
from store.errors import Unavailable
from store.factory import open_blobs, open_store

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("server.app")


StoreOpener = Callable[[Settings], Awaitable[tuple[Store, BlobStore]]]


class Engine(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class _Opening:
    """Resources as their cleanup contexts open them, until ``Services`` is built."""

    redis: Redis | None = None
    bus: Bus | None = None
    presence: Presence | None = None
    counter: Counter | None = None
    store: Store | None = None
    blobs: BlobStore | None = None


OPENING = web.AppKey("opening", _Opening)
CLOCK = web.AppKey("clock", Clock)


def create_app(settings: Settings | None = None, *, open_storage: StoreOpener | None = None,
               clock: Clock | None = None) -> web.Application:
    """``open_storage`` replaces the configured store (tests inject the MongoDB stand-in);
    ``clock`` replaces the system clock (tests inject a fake one)."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    realtime = Realtime(settings, handlers.all_events(), metrics)
    # Uploads enforce MAX_UPLOAD_MB while streaming; other bodies are small JSON.
    app = web.Application(client_max_size=1 << 20,
                          middlewares=[http.error_middleware])
    app[SETTINGS] = settings
    app[REALTIME] = realtime
    app[METRICS] = metrics
    app[OPENING] = _Opening()
    app[CLOCK] = clock or SystemClock()
    realtime.sio.attach(app)
    metrics.watch_sockets(lambda: realtime.sio.manager)
    http.setup_routes(app)
    web_security.setup(app)
    drain.setup(app)  # a draining instance refuses new sockets before they queue for a place
    handshakes = admission.Admission(settings.handshake_concurrency, settings.handshake_queue,
                                     app[CLOCK], on_wait=metrics.handshake_wait.observe,
                                     on_refused=metrics.handshakes_refused.inc)
    realtime.sio.admission = handshakes
    metrics.watch_admission(lambda: handshakes.in_progress, lambda: handshakes.peak,
                            lambda: handshakes.waiting)
    admission.setup(app, handshakes, recheck=drain.refusal)
    app[STORAGE] = open_storage or _open_configured_storage
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_bus_probe_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_services_ctx)
    # Engines start in this order once the container exists and stop in reverse.
    for pick in (lambda s: s.locks, lambda s: s.ticker, lambda s: s.pcap, lambda s: s.chat,
                 lambda s: s.imports, lambda s: s.housekeeping, lambda s: s.instances):
        app.cleanup_ctx.append(_engine_ctx(pick))
    app.cleanup_ctx.append(_presence_ctx)
    app.cleanup_ctx.append(_heap_ctx)
    return app


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    opening, settings, clock = app[OPENING], app[SETTINGS], app[CLOCK]
    if settings.redis_url:
        client = open_redis(settings.redis_url)
        await _wait_for(client.ping, "Redis", settings.redis_url)
        opening.redis = client
        opening.counter = RedisCounter(client)
        opening.bus = RedisBus(client)
        opening.presence = RedisPresence(client, settings.instance_id, settings.presence_ttl_s,
                                         clock)
    else:
        opening.counter = MemoryCounter(clock)
        opening.bus = Bus()
        opening.presence = MemoryPresence()
    await opening.bus.start()
    manager = app[REALTIME].sio.manager
    if isinstance(manager, RedisManager):
        manager.start()
    yield
    await opening.bus.close()
    if opening.redis is not None:
        await opening.redis.aclose()


async def _bus_probe_ctx(app: web.Application) -> AsyncIterator[None]:
    """Times the Redis bus with the instance's own messages (not on the in-process bus)."""
    opening, metrics = app[OPENING], app[METRICS]
    probe = None
    if opening.redis is not None and opening.bus is not None:
        probe = BusProbe(opening.bus, app[CLOCK], observe=metrics.bus_lag.observe,
                         lost=metrics.bus_probes_lost.inc)
        await probe.start()
    yield
    if probe is not None:
        await probe.stop()


async def _open_configured_storage(s: Settings) -> tuple[Store, BlobStore]:
    store = await open_store(data_dir=Path(s.data_dir), mongo_url=s.mongo_url,
                             mongo_db=s.mongo_db)
    return store, await open_blobs(store, data_dir=Path(s.data_dir))


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    opening = app[OPENING]
    store, blobs = await app[STORAGE](app[SETTINGS])  # type: ignore[operator]
    metrics = app[METRICS]
    opening.store = measure_store(store, metrics.store_seconds, metrics.store_errors)
    opening.blobs = blobs
    log.info("store open", extra={"fields": {"backend": store.backend}})
    yield
    await blobs.close()
    await store.close()


def build_services(settings: Settings, opening: _Opening, realtime: Realtime,
                   clock: Clock) -> Services:
    assert opening.store and opening.blobs and opening.bus and opening.presence \
        and opening.counter, "resources open before the services are built"
    tokens = TokenService(resolve_jwt_secret(settings), settings.access_token_minutes,
                          settings.refresh_token_days, clock)
    sessions = Sessions(opening.store, opening.bus, clock, tokens.access_seconds)
    sessions.attach()
    core = Core(
        settings=settings, clock=clock, tokens=tokens, sessions=sessions,
        signin=SignInGuard(opening.counter, clock, settings, opening.store.audit),
        event_limits=RedisEventLimiter(opening.redis, MemoryEventLimiter(clock), clock)
        if opening.redis is not None else MemoryEventLimiter(clock),
        hasher=PasswordHasher(settings.bcrypt_rounds),
        secrets=SecretBox(resolve_secrets_key(settings)),
        store=opening.store, blobs=opening.blobs, bus=opening.bus, presence=opening.presence,
        counter=opening.counter, gateway=realtime, hooks=Hooks(), redis=opening.redis,
        delivery=Delivery(realtime.sio, clock, max_events=settings.replay_max_events,
                          window_s=settings.replay_window_s, enabled=settings.sequence_pushes,
                          redis=opening.redis, channel=realtime.channel,
                          order=realtime.push_order(clock), host_id=realtime.host_id),
        requests=Requests(RedisLedger(opening.redis, MemoryLedger(clock))
                          if opening.redis is not None else MemoryLedger(clock),
                          settings.replay_window_s))
    redis, iid = opening.redis, settings.instance_id
    locks = LockService(
        RedisLocks(redis) if redis is not None else MemoryLocks(),
        clock=clock, push=realtime.push_project,
        leader=make_leader(redis, "lock-reaper", iid, max(2.0, settings.lock_lease_s / 3)),
        instance_id=iid, edit_timeout=settings.lock_edit_timeout_s,
        cooldown=settings.lock_cooldown_s, lease=settings.lock_lease_s,
        grace=settings.lock_grace_s)
    ticker = Ticker(core, make_leader(redis, "ticker", iid, settings.ticker_interval_s * 1.25),
                    settings.ticker_interval_s)
    pcap = PcapService(core)
    chat = ReplyEngine(core, make_provider(settings, clock),
                       make_leader(redis, "chat-reaper", iid, max(3.0, settings.chat_lease_s)),
                       on_first_delta=realtime.metrics.chat_first_delta.observe,
                       on_early=lambda outcome: realtime.metrics.chat_early.labels(outcome).inc())
    # Hooks run in registration order: a project's files and tables go first.
    attach_project_cascade(core, locks)
    locks.attach(core.hooks)
    chat.attach()
    pcap.attach()
    imports = ChatImportService(core)
    imports.attach()
    housekeeping = Housekeeping(core, make_leader(redis, "housekeeping", iid, 120.0))
    instances = InstanceRegistry(realtime, clock, iid, redis)
    return Services.with_engines(core, locks=locks, ticker=ticker, pcap=pcap, chat=chat,
                                 imports=imports, housekeeping=housekeeping,
                                 instances=instances)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    realtime = app[REALTIME]
    services = build_services(app[SETTINGS], app[OPENING], realtime, app[CLOCK])
    realtime.bind(services)
    app[METRICS].watch_jobs(
        {"pcap": services.store.pcap, "chat_import": services.store.chat_imports},
        services.clock, {"pcap": lambda: len(services.pcap.running),
                         "chat_import": lambda: len(services.imports.running)})
    yield
    with contextlib.suppress(Exception):
        await realtime.sio.shutdown()
    await services.delivery.aclose()


def _engine_ctx(pick: Callable[[Services], Engine]):
    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        engine = pick(services_of(app))
        await engine.start()
        yield
        with contextlib.suppress(Exception):
            await engine.stop()

    return engine_ctx


async def _presence_ctx(app: web.Application) -> AsyncIterator[None]:
    realtime = app[REALTIME]
    beat = asyncio.create_task(_presence_loop(realtime), name="presence-beat")
    yield
    beat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beat
    # Leave cleanly so the others see our users go at once, not after PRESENCE_TTL_S.
    for pid in await realtime.services.presence.close():
        with contextlib.suppress(Exception):
            await realtime.push_presence(pid)


async def _heap_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(trim_loop(app[CLOCK]), name="heap-trim")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _presence_loop(realtime: Realtime) -> None:
    presence, clock = realtime.services.presence, realtime.services.clock
    interval = realtime.services.settings.presence_ttl_s / 3
    manager = realtime.sio.manager
    heard = getattr(manager, "generation", 0)
    outage = OutageLog(log, "presence beat")
    while True:
        try:
            changed = await presence.beat()
            outage.ok()
            generation = getattr(manager, "generation", 0)
            if generation != heard:
                # The Socket.IO manager subscribed again: presence pushed by the other
                # instances while it was not listening passed our sockets by.
                changed |= presence.local_projects()
            for pid in changed:
                await realtime.push_presence(pid)
            heard = generation
        except asyncio.CancelledError:
            raise
        except Unavailable as exc:
            outage.failed(exc)
        except Exception:
            log.exception("presence beat failed")
        await clock.sleep(interval)


async def _wait_for(probe, what: str, where: str, attempts: int = 10) -> None:
    for attempt in range(attempts):
        try:
            await probe()
            return
        except Exception as exc:  # the driver's connection errors vary by version
            if attempt == attempts - 1:
                raise RuntimeError(f"{what} at {where} is not reachable: {exc}") from exc
            await asyncio.sleep(min(0.2 * 2 ** attempt, 2))
