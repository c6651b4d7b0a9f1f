"""DiscordChatExporter's JSON (``guild``, ``channel``, ``messages``, ``messageCount``): one
channel per file, messages oldest first, streamed with ijson. Ids (snowflakes) are kept
exactly as strings; timestamps carry their offset and are stored in UTC."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.chats.common import Context, attachment, from_iso, grouped, kind_of
from ingest.chats.jsonio import items, open_json, scan_header
from ingest.chats.model import ParsedChat, ParsedMessage
from ingest.chats.source import Input

_HEADER = frozenset(("guild.id", "guild.name", "channel.id", "channel.type", "channel.name",
                     "channel.category"))
_MESSAGE_TYPES = frozenset(("Default", "Reply", "0", "19"))


def chats(inputs: list[Input], ctx: Context) -> Iterator[ParsedChat]:
    return grouped(_rows(inputs, ctx), _name, "discord",
                   lambda header, raw: _message(raw, ctx))


def _rows(inputs: list[Input], ctx: Context) -> Iterator[tuple[Any, Any]]:
    for inp in inputs:
        header = scan_header(inp, "messages", _HEADER)
        header["#file"] = inp.name
        key = _Key(header)
        with open_json(inp, ctx.progress) as f:
            for raw in items(f, "messages.item", inp.name):
                yield key, raw


class _Key:
    __slots__ = ("header",)

    def __init__(self, header: dict):
        self.header = header


def _name(key: _Key) -> str:
    h = key.header
    channel = str(h.get("channel.name") or "").strip()
    guild = str(h.get("guild.name") or "").strip()
    kind = str(h.get("channel.type") or "")
    if not channel:
        return guild or "Discord channel"
    if kind.startswith("Guild") or (guild and guild != "Direct Messages"):
        category = str(h.get("channel.category") or "").strip()
        inner = f"{category} / #{channel}" if category and kind.endswith("Thread") else \
            f"#{channel}"
        return f"{guild} / {inner}" if guild else inner
    return channel


def _message(raw: Any, ctx: Context) -> ParsedMessage | None:
    where = f"message {raw.get('id')}" if isinstance(raw, dict) else "a message"
    try:
        author = raw.get("author") or {}
        name = author.get("nickname") or author.get("name") or "(unknown)"
        kind = "message" if str(raw.get("type", "Default")) in _MESSAGE_TYPES else "system"
        reference = raw.get("reference") or {}
        reply = reference.get("messageId") if reference.get("type") in (None, "Default",
                                                                         "Reply") else None
        attachments = [attachment(kind_of(a.get("fileName")), a.get("fileName"))
                       for a in raw.get("attachments") or () if isinstance(a, dict)]
        attachments += [attachment("sticker", s.get("name"))
                        for s in raw.get("stickers") or () if isinstance(s, dict)]
        reactions = []
        for r in raw.get("reactions") or ():
            emoji = r.get("emoji") or {}
            reactions.append({"emoji": str(emoji.get("name") or emoji.get("code") or "?"),
                              "count": int(r.get("count") or 1)})
        return ParsedMessage(
            time=from_iso(str(raw["timestamp"]), ctx), author=str(name),
            text=str(raw.get("content") or ""), kind=kind, author_id=_str(author.get("id")),
            source_id=_str(raw.get("id")), reply_source=_str(reply), attachments=attachments,
            reactions=reactions, edited=bool(raw.get("timestampEdited")))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        ctx.warn(where, f"a message that cannot be read was skipped ({e})")
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
