"""Typed keys of everything the aiohttp application holds."""
from __future__ import annotations

from aiohttp import web

from server.config import Settings
from server.metrics import Metrics
from server.realtime import Realtime
from server.services import Services

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
REALTIME = web.AppKey("realtime", Realtime)
METRICS = web.AppKey("metrics", Metrics)
STORAGE = web.AppKey("storage", object)  # async (settings) -> (Store, BlobStore)
