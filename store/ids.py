"""Identifiers and timestamps shared by every backend."""
from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import overload

_lock = threading.Lock()
_last = [0, 0]  # millisecond, sequence within it


def new_id() -> str:
    """A 24-hex-char id that sorts by creation time (like a MongoDB ObjectId).

    Time-ordered ids let every list page by ``id > cursor`` on both backends instead of
    skip/offset scans; the per-process sequence keeps ids made in the same millisecond (a
    batch of imported rows) in the order they were made.
    """
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, seq = _last[0], _last[1] + 1
            if seq > 0xFFFF:
                ms, seq = ms + 1, 0
        else:
            seq = 0
        _last[0], _last[1] = ms, seq
    return f"{ms:012x}{seq:04x}{os.urandom(4).hex()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
@overload
def iso(dt: datetime | None) -> str | None: ...
def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@overload
def parse_iso(value: str) -> datetime: ...
@overload
def parse_iso(value: None) -> None: ...
@overload
def parse_iso(value: str | None) -> datetime | None: ...
def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
