"""Identifiers and timestamps shared by every backend."""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone


def new_id() -> str:
    """A 24-hex-char id that sorts by creation time (like a MongoDB ObjectId).

    Time-ordered ids let every list page by ``id > cursor`` on both backends instead of
    skip/offset scans.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(6).hex()}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
