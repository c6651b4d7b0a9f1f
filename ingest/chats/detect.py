"""Which platform an upload comes from, by its bytes (zip or not, JSON shape, a WhatsApp
header) and its names (``result.json``, ``conversations.json``, ``message_1.json``, Slack's
``channels.json`` beside day folders, ``_chat.txt``), and the plan to read it."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from ingest.chats import chatgpt, discord, messenger, slack, telegram, whatsapp
from ingest.chats.common import Context, non_empty
from ingest.chats.jsonio import (
    JsonShape,
    decode_head,
    json_head,
    json_shape,
    looks_binary,
    sniff_encoding,
)
from ingest.chats.model import PLATFORMS, ChatFormatError, ParsedChat
from ingest.chats.source import ZIP_MAGIC, Archive, ArchiveLimits, FileInput, Input

HEAD = 65536
LABELS = {"whatsapp": "WhatsApp", "telegram": "Telegram Desktop",
          "discord": "DiscordChatExporter", "slack": "Slack", "chatgpt": "ChatGPT",
          "messenger": "Messenger/Instagram"}
KNOWN = ("WhatsApp .txt/.zip, Telegram Desktop result.json, DiscordChatExporter JSON, Slack "
         "export zip, ChatGPT conversations.json, Messenger/Instagram message_N.json")
_MAGIC = ((b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"\x1f\x8b", "a gzip file"), (b"Rar!", "a RAR archive"),
          (b"7z\xbc\xaf", "a 7-Zip archive"), (b"SQLite format 3", "an SQLite database"),
          (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
          (b"<!DOCTYPE html", "an HTML page"), (b"<html", "an HTML page"))
_CONVERSATIONS = re.compile(r"^conversations(-\d+)?\.json$", re.I)


@dataclass
class Plan:
    platform: str
    inputs: list[Input]  # the main inputs: their sizes make the export's size
    run: Callable[[Context], Iterator[ParsedChat]]


@dataclass
class Seen:
    """What one input turned out to be."""

    platform: str | None
    description: str
    json: bool = False
    encoding: str = "utf-8"
    account: bool = False  # a Telegram export of a whole account


def detect(path: Path, filename: str, forced: str | None,
           limits: ArchiveLimits) -> tuple[Plan, Archive | None]:
    size = path.stat().st_size
    if size == 0:
        raise ChatFormatError("empty", f"{filename} is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(HEAD)
    if head.startswith(ZIP_MAGIC):
        archive = Archive(path, filename, limits)
        try:
            return _plan_zip(archive, filename, forced), archive
        except BaseException:
            archive.close()
            raise
    inp = FileInput(path, filename)
    seen = classify(inp, head, size <= len(head))
    if forced is not None and seen.platform != forced:
        raise ChatFormatError(
            "not_a_chat", f"{filename} is not a {LABELS[forced]} export: it is "
            f"{seen.description}", {"platform": forced, "seen": seen.description})
    if seen.platform is None:
        if seen.description == "blank text":
            raise ChatFormatError("empty", f"{filename} holds nothing but blank lines")
        if seen.json:
            raise ChatFormatError(
                "not_a_chat", f"{filename} is {seen.description}, which is not a chat export "
                f"this server reads ({KNOWN})", {"seen": seen.description})
        raise ChatFormatError(
            "unknown_format", f"{filename} is not a chat export this server reads: it is "
            f"{seen.description} (expected {KNOWN})", {"seen": seen.description})
    return _plan(seen.platform, [(inp, seen)], filename, [inp]), None


def classify(inp: Input, head: bytes, whole: bool) -> Seen:
    """What ``inp`` is, from its first bytes (``whole``: they are all of it)."""
    name = inp.name
    if head.startswith(ZIP_MAGIC):
        return Seen(None, "a zip archive")
    try:
        start = json_head(head).lstrip()[:1] if _maybe_json(head) else b""
    except UnicodeDecodeError:
        start = b""
    if start == b"[":  # an iOS WhatsApp chat starts with "[" too
        encoding = sniff_encoding(head)
        try:
            if whatsapp.sniff(decode_head(head, encoding, whole)):
                return Seen("whatsapp", "a WhatsApp chat", encoding=encoding)
        except UnicodeDecodeError:
            pass
    if start in (b"{", b"["):
        try:
            shape = json_shape(json_head(head), whole, name)
        except UnicodeDecodeError as e:
            raise ChatFormatError("undecodable", f"{name} is not valid UTF-16 ({e.reason})",
                                  {"file": name}) from None
        platform, account = json_platform(shape, name)
        return Seen(platform, shape.describe(), json=True, account=account)
    encoding = sniff_encoding(head)
    if encoding == "utf-8" and looks_binary(head):
        for magic, what in _MAGIC:
            if head.startswith(magic):
                return Seen(None, what)
        return Seen(None, f"binary data (starting {head[:8].hex(' ')})")
    try:
        text = decode_head(head, encoding, whole)
    except UnicodeDecodeError as e:
        raise ChatFormatError(
            "undecodable", f"{name} is text that is not valid UTF-8 or UTF-16 (byte "
            f"0x{e.object[e.start]:02X} at offset {e.start}); export the chat again, or save "
            "it as UTF-8", {"file": name}) from None
    if whatsapp.sniff(text):
        return Seen("whatsapp", "a WhatsApp chat", encoding=encoding)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return Seen(None, "blank text")
    for magic, what in _MAGIC:
        if lines[0].lower().startswith(magic.decode("latin-1").lower()):
            return Seen(None, what)
    first = lines[0] if len(lines[0]) <= 80 else lines[0][:77] + "…"
    return Seen(None, f"text whose first line is {first!r}", encoding=encoding)


def _maybe_json(head: bytes) -> bool:
    stripped = head.lstrip(b" \t\r\n")
    return stripped[:1] in (b"{", b"[", b"\xef", b"\xff", b"\xfe", b"\x00") or (
        len(stripped) > 1 and stripped[1:2] == b"\x00")


def json_platform(shape: JsonShape, name: str) -> tuple[str | None, bool]:
    """(platform, whole Telegram account) for a JSON document of this shape."""
    top = shape.keys.get("", [])
    if shape.top == "object":
        if "guild" in top and "channel" in top:
            return "discord", False
        if "messages" in top and ("participants" in top or "threadName" in top or shape.any(
                "messages.item", "sender_name", "senderName", "timestamp_ms")):
            return "messenger", False
        if "messages" in top and (shape.any("", "name", "type", "id") or shape.any(
                "messages.item", "date_unixtime", "from_id", "text_entities")):
            return "telegram", False
        if shape.any("", "chats", "left_chats") or ("about" in top and shape.any(
                "", "personal_information", "contacts", "frequent_contacts",
                "profile_pictures", "sessions")):
            return "telegram", True
    elif shape.top == "array":
        if shape.any("item", "mapping") and shape.any("item", "title", "current_node",
                                                     "create_time", "conversation_id"):
            return "chatgpt", False
        if shape.first_item is None and _CONVERSATIONS.match(name.rsplit("/", 1)[-1]):
            return "chatgpt", False
    return None, False


def _plan_zip(archive: Archive, filename: str, forced: str | None) -> Plan:
    members = [m for m in archive.useful() if m.size > 0]
    if not members:
        raise ChatFormatError("empty", f"{filename} is an empty archive")
    names = [m.name for m in members]
    listing = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    seen_as = f"a zip archive holding {listing} ({len(names)} files)"

    if forced in (None, "slack"):
        root = slack.root_of(members)  # type: ignore[arg-type]
        if root is not None:
            export = slack.SlackExport(members, root)  # type: ignore[arg-type]
            return Plan("slack", export.main_inputs, export.chats)

    found: dict[str, list[tuple[Input, Seen]]] = {}
    first_error: ChatFormatError | None = None
    candidates = sorted((m for m in members if m.name.lower().endswith((".json", ".txt"))),
                        key=lambda m: (_priority(m.basename), m.name.count("/"), m.name))
    looked = 0
    for member in candidates:
        if (looked >= 50 and found) or looked >= 200:
            break
        if messenger.FILE.match(member.basename) and "messenger" in found:
            found["messenger"].append((member, found["messenger"][0][1]))
            continue
        looked += 1
        head = member.head(HEAD)
        try:
            seen = classify(member, head, member.size <= len(head))
        except ChatFormatError as e:
            first_error = first_error or e
            continue
        if head.startswith(ZIP_MAGIC):
            raise ChatFormatError("unsafe_archive", f"{member.name} is itself a zip archive; "
                                  "nested archives are not accepted", {"member": member.name})
        if seen.platform is not None and (forced is None or seen.platform == forced):
            found.setdefault(seen.platform, []).append((member, seen))
    for platform in ("telegram", "chatgpt", "messenger", "whatsapp", "discord"):
        if platform in found:
            files = found[platform]
            if platform in ("telegram", "chatgpt"):
                files = files[:1]
            return _plan(platform, files, filename, [m for m, _ in files])
    if first_error is not None:
        raise first_error
    if forced is not None:
        raise ChatFormatError("not_a_chat", f"{filename} is not a {LABELS[forced]} export: it "
                              f"is {seen_as}", {"platform": forced, "seen": seen_as})
    raise ChatFormatError("unknown_format", f"{filename} is not a chat export this server "
                          f"reads: it is {seen_as} (expected {KNOWN})", {"seen": seen_as})


def _priority(basename: str) -> int:
    lower = basename.lower()
    if lower in ("result.json", "_chat.txt") or _CONVERSATIONS.match(lower):
        return 0
    if lower.startswith("whatsapp") or messenger.FILE.match(lower):
        return 1
    return 2


def _plan(platform: str, files: list[tuple[Input, Seen]], filename: str,
          inputs: list[Input]) -> Plan:
    if platform == "whatsapp":
        def run(ctx: Context) -> Iterator[ParsedChat]:
            for inp, seen in files:
                chat = whatsapp.WhatsAppChat(inp, seen.encoding,
                                             whatsapp.chat_name(inp.name, filename), ctx).chat()
                messages = non_empty(chat.messages)
                if messages is not None:
                    chat.messages = messages
                    yield chat
        return Plan(platform, inputs, run)
    if platform == "telegram":
        return Plan(platform, inputs, lambda ctx: chain.from_iterable(
            telegram.chats(inp, seen.account, ctx) for inp, seen in files))
    if platform == "discord":
        return Plan(platform, inputs, lambda ctx: discord.chats(inputs, ctx))
    if platform == "chatgpt":
        return Plan(platform, inputs, lambda ctx: chatgpt.chats(inputs, ctx))
    if platform == "messenger":
        groups = messenger.threads(inputs)
        return Plan(platform, inputs, lambda ctx: messenger.chats(groups, ctx))
    raise AssertionError(platform)


def check_platform(platform: str | None) -> None:
    if platform is not None and platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
