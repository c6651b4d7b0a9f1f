"""What the platform parsers share: the import's context (time zone, warnings, limits,
progress), times, attachment kinds, and turning a stream of raw messages into chats."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import chain
from typing import Any

from ingest.chats.model import ParsedChat, ParsedMessage, Warn
from ingest.chats.source import ArchiveLimits, Progress


@dataclass
class Context:
    tz: tzinfo  # for exports that write local times (WhatsApp, old Telegram)
    limits: ArchiveLimits
    progress: Progress
    on_warn: Warn | None = None
    warnings: int = 0

    @property
    def utc(self) -> bool:
        return self.tz is UTC

    def warn(self, where: str, text: str) -> None:
        self.warnings += 1
        if self.on_warn is not None:
            self.on_warn(where, text)

    def local(self, naive: datetime) -> datetime:
        """A naive local time of the import's zone, in UTC."""
        return naive.replace(tzinfo=self.tz).astimezone(UTC)


def from_epoch(value: Any, scale: int = 1) -> datetime:
    """A UTC time from seconds (or 1/``scale`` seconds) since 1970: an int, float, Decimal
    or a string of one."""
    if isinstance(value, str):
        value = Decimal(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        whole, part = divmod(value, scale)
        return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=part * 1_000_000
                                                              // scale)
    exact = Decimal(value) / scale
    whole = int(exact)
    micro = int(((exact - whole) * 1_000_000).to_integral_value())
    return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=micro)


def from_iso(value: str, ctx: Context) -> datetime:
    """An ISO 8601 time; one without an offset is local to the import's zone."""
    t = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if t.tzinfo is None:
        return ctx.local(t)
    return t.astimezone(UTC)


_KIND_BY_EXT = {
    **dict.fromkeys(("jpg", "jpeg", "png", "heic", "heif", "bmp", "tif", "tiff", "svg",
                     "avif"), "image"),
    "gif": "gif",
    "webp": "sticker",
    "tgs": "sticker",
    **dict.fromkeys(("mp4", "mov", "3gp", "mkv", "webm", "avi", "m4v"), "video"),
    **dict.fromkeys(("opus", "ogg", "oga", "m4a", "mp3", "aac", "wav", "amr", "flac"), "audio"),
    "vcf": "contact",
}


def kind_of(name: str | None, default: str = "file") -> str:
    """An attachment's kind from its file name."""
    if not name:
        return default
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _KIND_BY_EXT.get(ext, default)


def attachment(kind: str, name: str | None = None) -> dict:
    return {"kind": kind, "name": name} if name else {"kind": kind}


def basename(path: str) -> str:
    return re.split(r"[/\\]", path)[-1]


def non_empty(messages: Iterator[ParsedMessage]) -> Iterator[ParsedMessage] | None:
    """``messages`` if it yields anything (the first one is read ahead), else None."""
    first = next(messages, None)
    if first is None:
        return None
    return chain((first,), messages)


def grouped(rows: Iterable[tuple[Any, Any]], name_of: Callable[[Any], str], platform: str,
            convert: Callable[[Any, Any], ParsedMessage | None]) -> Iterator[ParsedChat]:
    """Chats from ``rows`` of (chat key, raw message), consecutive rows of one key making
    one chat: ``name_of(key)`` names it, ``convert(key, raw)`` makes each message (None
    skips it). A chat left part-read is skipped to its end when the next one is asked for;
    chats without messages are left out."""
    it = iter(rows)
    row = next(it, None)
    while row is not None:
        key = row[0]
        pending: list[tuple[Any, Any] | None] = [row]

        def messages(key=key, pending=pending) -> Iterator[ParsedMessage]:
            while True:
                current = pending[0]
                if current is None or current[0] != key:
                    return
                message = convert(key, current[1])
                pending[0] = next(it, None)
                if message is not None:
                    yield message

        found = non_empty(messages())
        if found is not None:
            yield ParsedChat(name=name_of(key), platform=platform, messages=found)
        # whatever the consumer left of this chat is skipped here
        while pending[0] is not None and pending[0][0] == key:
            pending[0] = next(it, None)
        row = pending[0]
