"""Chat-history exports, parsed into ``ParsedChat``/``ParsedMessage`` (``model``), without
the server: pure code, synchronous, meant to run in a worker thread.

    with open_export(path, "WhatsApp Chat with Ann.zip", timezone="Europe/Paris") as export:
        export.platform                   # "whatsapp"
        for chat in export.chats():       # lazily, one chat at a time
            for message in chat.messages: # oldest first, streamed
                ...
            export.position, export.size  # bytes read so far / in all, for progress

Platforms (``model.PLATFORMS``): WhatsApp text or zip (``whatsapp``), Telegram Desktop JSON
(``telegram``), DiscordChatExporter JSON (``discord``), Slack export zip (``slack``), ChatGPT
``conversations.json`` (``chatgpt``), Messenger/Instagram JSON (``messenger``). The platform
is found from the bytes and names; ``platform=`` forces one (an upload that is not of it
raises ``not_a_chat``).

Whatever cannot be imported raises ``ChatFormatError`` (``reason``: unknown_format,
not_a_chat, truncated, empty, unsafe_archive, too_large, undecodable) with a message that
says what was seen. ``open_export`` checks the start of the input (and a zip's whole
directory); what is only found while reading (a JSON file cut short, bad bytes deep in a
text, an export without a single message → ``empty``) is raised from ``chats()`` or from a
chat's messages. A message or line that cannot be read is skipped or kept as text and
counted in ``warnings`` (and passed to ``warn``), never a crash.

Read each chat's messages before asking for the next chat: asking for the next one skips
what is left of the current one. ``chats()`` can be read once.

Modules: ``source`` (files, zip members and ``ArchiveLimits``), ``jsonio`` (streaming JSON,
encodings), ``detect``, and one per platform.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.chats.common import Context
from ingest.chats.detect import LABELS, Plan, check_platform, detect
from ingest.chats.model import PLATFORMS, ChatFormatError, ParsedChat, ParsedMessage, Warn
from ingest.chats.source import Archive, ArchiveLimits, Progress

__all__ = ["PLATFORMS", "LABELS", "ArchiveLimits", "ChatExport", "ChatFormatError",
           "ParsedChat", "ParsedMessage", "Warn", "open_export", "zone"]


def zone(name: str) -> tzinfo:
    """The time zone of that IANA name (``UTC`` itself for "UTC"); ValueError if unknown."""
    if name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e


class ChatExport:
    """An opened export (see the module's docstring). Close it, or use it with ``with``."""

    def __init__(self, plan: Plan, archive: Archive | None, ctx: Context, filename: str):
        self._plan, self._archive, self._ctx, self._filename = plan, archive, ctx, filename
        self._started = False
        self.platform = plan.platform
        self.size = sum(inp.size for inp in plan.inputs)

    @property
    def position(self) -> int:
        """Bytes of the main input(s) read so far (``size`` at the end)."""
        return min(self._ctx.progress.position, self.size)

    @property
    def warnings(self) -> int:
        return self._ctx.warnings

    def chats(self) -> Iterator[ParsedChat]:
        if self._started:
            raise RuntimeError("chats() of an export can be read once")
        self._started = True
        return self._chats()

    def _chats(self) -> Iterator[ParsedChat]:
        count = 0
        for chat in self._plan.run(self._ctx):
            count += 1
            yield chat
        if count == 0:
            raise ChatFormatError("empty", f"{self._filename} is a {LABELS[self.platform]} "
                                  "export without any message", {"platform": self.platform})

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __enter__(self) -> ChatExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_export(path: Path, filename: str, *, platform: str | None = None,
                timezone: str = "UTC", warn: Warn | None = None,
                limits: ArchiveLimits | None = None) -> ChatExport:
    """Open the upload at ``path`` (named ``filename`` by its sender) and find its platform.
    ``timezone`` (an IANA name) is where exports that write local times (WhatsApp) were
    made. Raises ChatFormatError for an upload that cannot be imported, ValueError for an
    unknown ``platform`` or ``timezone``."""
    check_platform(platform)
    ctx = Context(tz=zone(timezone), limits=limits or ArchiveLimits(), progress=Progress(),
                  on_warn=warn)
    plan, archive = detect(Path(path), filename, platform, ctx.limits)
    return ChatExport(plan, archive, ctx, filename)
