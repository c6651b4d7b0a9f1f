"""The catalogue comes from the registry, covers SPEC §3b's names, and the README shows it."""
from __future__ import annotations

from pathlib import Path

import handlers
from server.catalogue import render

ROOT = Path(__file__).resolve().parents[2]

SPEC_CORE = {
    "auth:register", "auth:login", "auth:guest", "auth:refresh", "auth:logout", "auth:me",
    "auth:upgrade", "project:list", "project:create", "project:get", "project:update",
    "project:delete", "project:join", "project:leave", "project:member:add",
    "project:member:remove", "project:broadcast", "ping", "sync",
}


def test_every_spec_event_of_the_landed_domains_is_registered():
    names = {spec.name for spec in handlers.all_events()}
    assert SPEC_CORE <= names


def test_every_event_documents_itself():
    for spec in handlers.all_events():
        assert spec.doc, f"{spec.name} has no docstring"
        assert spec.ack, f"{spec.name} does not say what its ack holds"
        # domain:action, except the two the spec names bare (SPEC §3b)
        assert spec.name.count(":") >= 1 or spec.name in ("ping", "sync")


def test_readme_contains_the_current_catalogue():
    table = render(handlers.all_events())
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README is stale: paste the output of `python -m server events`"
