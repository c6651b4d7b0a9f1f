"""Typed keys of everything the aiohttp application holds."""
from __future__ import annotations

from aiohttp import web

from server.metrics import Metrics
from server.realtime import Realtime
from services.config import Settings
from services.container import Services

SETTINGS = web.AppKey("settings", Settings)
REALTIME = web.AppKey("realtime", Realtime)
METRICS = web.AppKey("metrics", Metrics)
STORAGE = web.AppKey("storage", object)  # async (settings) -> (Store, BlobStore)


def services_of(app: web.Application) -> Services:
    """The instance's services: built when the app starts (every resource open), so only
    request handlers and code running after startup may ask."""
    return app[REALTIME].services
