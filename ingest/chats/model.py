"""What every chat-export parser yields, whatever the platform: chats, each with its messages
oldest first, normalized (UTC times, one author name, attachments and reactions as small
records). Pure data: the store keeps these as they are."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

PLATFORMS = ("whatsapp", "telegram", "discord", "slack", "chatgpt", "messenger")


@dataclass(slots=True)
class ParsedMessage:
    time: datetime  # aware, UTC
    author: str
    text: str
    kind: str = "message"  # message | system
    author_id: str | None = None  # the platform's id of the author, as a string
    source_id: str | None = None  # the platform's id of this message, as a string
    reply_source: str | None = None  # the platform's id of the message this one answers
    attachments: list[dict] = field(default_factory=list)  # {kind, name?}
    reactions: list[dict] = field(default_factory=list)  # {emoji, count}
    edited: bool = False
    deleted: bool = False


# A message as an import hands it to the store: a plain tuple, which crosses the parser's
# pipe several times faster than the dataclass and binds to SQL without rebuilding it.
# (time: integer milliseconds since the epoch, UTC, floored; author; text; kind; author_id;
# source_id; reply_source; attachments; reactions; edited; deleted)
MessageRow = tuple[int, str, str, str, str | None, str | None, str | None, list[dict],
                   list[dict], bool, bool]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def message_row(m: ParsedMessage) -> MessageRow:
    return ((m.time - EPOCH) // MS, m.author, m.text, m.kind, m.author_id, m.source_id,
            m.reply_source, m.attachments, m.reactions, m.edited, m.deleted)


@dataclass(slots=True)
class ParsedChat:
    """One chat of an export; ``messages`` is consumed once, oldest first."""

    name: str
    platform: str
    messages: Iterator[ParsedMessage]


class ChatFormatError(Exception):
    """The export cannot be imported; ``reason`` is a stable word for clients
    (unknown_format, not_a_chat, truncated, empty, unsafe_archive, too_large, undecodable)."""

    def __init__(self, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.reason, self.message, self.details = reason, message, details or {}


# Called with (line or position, text) for input that was skipped but did not stop the import.
Warn = Callable[[str, str], None]
