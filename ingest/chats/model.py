"""What every chat-export parser yields, whatever the platform: chats, each with its messages
oldest first, normalized (UTC times, one author name, attachments and reactions as small
records). Pure data: the store keeps these as they are."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

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
