"""One module per domain; each ends with ``EVENTS``, the whole surface it registers.

Thin by rule: validate (the payload model) → authorize (the declared role, plus resource
checks) → act (the store) → emit (pushes). No envelopes, no broad ``except``.
"""
from __future__ import annotations

from handlers import auth, chat, files, misc, pcap, projects, rows, tables, ticker

DOMAINS = [auth, projects, files, tables, rows, ticker, chat, pcap, misc]


def all_events():
    return [fn.spec for domain in DOMAINS for fn in domain.EVENTS]


def install_all(services) -> None:
    """Let domains subscribe to cluster messages and hooks once the instance is built."""
    for domain in DOMAINS:
        install = getattr(domain, "install", None)
        if install:
            install(services)
