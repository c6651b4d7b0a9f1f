"""The app factory: one aiohttp application with its Socket.IO server attached.

Each long-lived resource has one cleanup context that opens it and closes it (aiohttp's
``cleanup_ctx``); background loops start and stop there too.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

import handlers
from server import http
from server.bus import Bus, RedisBus
from server.config import Settings, resolve_jwt_secret, resolve_secrets_key
from server.crypto import SecretBox
from server.leader import LocalLeader, RedisLeader
from server.locks import LockService, MemoryLocks, RedisLocks
from server.ticker import Ticker
from server.keys import METRICS, REALTIME, SERVICES, SETTINGS, STORAGE
from server.metrics import Metrics
from server.presence import MemoryPresence, RedisPresence
from server.ratelimit import MemoryCounter, RedisCounter
from server.realtime import Realtime
from server.security import PasswordHasher, TokenService
from server.services import Services
from store.base import Store
from store.blobs import BlobStore
from store.factory import open_blobs, open_store

log = logging.getLogger("server.app")


StoreOpener = Callable[[Settings], Awaitable[tuple[Store, BlobStore]]]


def create_app(settings: Settings | None = None, *,
               open_storage: StoreOpener | None = None) -> web.Application:
    """``open_storage`` replaces the configured store (tests inject the MongoDB stand-in)."""
    settings = settings or Settings.from_env()
    services = Services(
        settings=settings,
        tokens=TokenService(resolve_jwt_secret(settings), settings.access_token_minutes,
                            settings.refresh_token_days),
        hasher=PasswordHasher(settings.bcrypt_rounds),
        secrets=SecretBox(resolve_secrets_key(settings)),
    )
    metrics = Metrics()
    realtime = Realtime(services, handlers.all_events(), metrics)
    # Uploads enforce MAX_UPLOAD_MB while streaming; other bodies are small JSON.
    app = web.Application(client_max_size=1 << 20, middlewares=[http.error_middleware])
    app[SETTINGS] = settings
    app[SERVICES] = services
    app[REALTIME] = realtime
    app[METRICS] = metrics
    realtime.sio.attach(app)
    http.setup_routes(app)
    app[STORAGE] = open_storage or _open_configured_storage
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_runtime_ctx)
    return app


async def _redis_ctx(app: web.Application):
    services = app[SERVICES]
    settings = services.settings
    if settings.redis_url:
        import redis.asyncio as aioredis

        client = aioredis.from_url(settings.redis_url, health_check_interval=10,
                                   socket_connect_timeout=5, retry_on_timeout=True)
        await _wait_for(client.ping, "Redis", settings.redis_url)
        services.redis = client
        services.counter = RedisCounter(client)
        services.bus = RedisBus(client)
        services.presence = RedisPresence(client, settings.instance_id, settings.presence_ttl_s)
    else:
        services.counter = MemoryCounter()
        services.bus = Bus()
        services.presence = MemoryPresence()
    yield
    if services.redis is not None:
        await services.redis.aclose()


async def _open_configured_storage(s: Settings) -> tuple[Store, BlobStore]:
    store = await open_store(data_dir=Path(s.data_dir), mongo_url=s.mongo_url,
                             mongo_db=s.mongo_db)
    return store, await open_blobs(store, data_dir=Path(s.data_dir))


async def _store_ctx(app: web.Application):
    services = app[SERVICES]
    services.store, services.blobs = await app[STORAGE](services.settings)
    log.info("store open", extra={"fields": {"backend": services.store.backend}})
    yield
    await services.blobs.close()
    await services.store.close()


async def _runtime_ctx(app: web.Application):
    services = app[SERVICES]
    realtime = app[REALTIME]
    settings = services.settings

    def leader(name: str, ttl: float):
        if services.redis is None:
            return LocalLeader(name, settings.instance_id)
        return RedisLeader(services.redis, name, settings.instance_id, ttl)

    services.locks = LockService(
        RedisLocks(services.redis) if services.redis is not None else MemoryLocks(),
        push=lambda pid, event, data: realtime.push_project(pid, event, data),
        leader=leader("lock-reaper", max(2.0, settings.lock_lease_s / 3)),
        instance_id=settings.instance_id, edit_timeout=settings.lock_edit_timeout_s,
        cooldown=settings.lock_cooldown_s, lease=settings.lock_lease_s,
        grace=settings.lock_grace_s)
    services.ticker = Ticker(services, leader("ticker", settings.ticker_interval_s * 1.25),
                             settings.ticker_interval_s)
    handlers.install_all(services)
    await services.bus.start()
    services.locks.start()
    services.ticker.start()
    for start in services.hooks.startup:
        await start()
    beat = asyncio.create_task(_presence_loop(realtime), name="presence-beat")
    yield
    beat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await beat
    for stop in reversed(services.hooks.shutdown):
        with contextlib.suppress(Exception):
            await stop()
    await services.ticker.stop()
    await services.locks.stop()
    # Leave cleanly so the others see our users go at once, not after PRESENCE_TTL_S.
    for pid in await services.presence.close():
        with contextlib.suppress(Exception):
            await realtime.push_presence(pid)
    with contextlib.suppress(Exception):
        await realtime.sio.shutdown()
    await services.bus.close()


async def _presence_loop(realtime: Realtime) -> None:
    presence = realtime.services.presence
    interval = realtime.services.settings.presence_ttl_s / 3
    while True:
        try:
            for pid in await presence.beat():
                await realtime.push_presence(pid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("presence beat failed")
        await asyncio.sleep(interval)


async def _wait_for(probe, what: str, where: str, attempts: int = 10) -> None:
    for attempt in range(attempts):
        try:
            await probe()
            return
        except Exception as exc:  # the driver's connection errors vary by version
            if attempt == attempts - 1:
                raise RuntimeError(f"{what} at {where} is not reachable: {exc}") from exc
            await asyncio.sleep(min(0.2 * 2 ** attempt, 2))
