"""One module per domain; each ends with ``EVENTS``, the whole surface it registers.

Thin by rule: validate (the payload model) → authorize (the declared role, plus resource
checks) → act (the store) → emit (pushes). No envelopes, no broad ``except``.
"""
from __future__ import annotations

from handlers import (
    admin,
    auth,
    chat,
    chats,
    files,
    misc,
    pcap,
    projects,
    rows,
    sync,
    tables,
    ticker,
)
from handlers.base import EventSpec

DOMAINS = [auth, projects, files, tables, rows, ticker, chat, pcap, chats, admin, misc, sync]


def all_events() -> list[EventSpec]:
    return [fn.spec for domain in DOMAINS for fn in domain.EVENTS]
