"""Facebook Messenger and Instagram JSON (``message_1.json``, ``message_2.json``, … per
thread folder, alone or in a zip), and Messenger's newer end-to-end-encrypted export
(``senderName``/``timestamp``/``threadName``).

The files list messages newest first and ``message_1.json`` holds the newest, so a thread
is read from its highest-numbered file down, each file reversed (then sorted by time). A
file is held whole to do so (``json.loads``, bounded by ``ArchiveLimits.max_buffered``;
Facebook cuts threads into files of about 10,000 messages).

The older format writes UTF-8 text as if each byte were a Latin-1 character (``ZoÃ«``); the
names, texts and reactions are repaired (``Zoë``) whenever the round trip works.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ingest.chats.common import Context, attachment, basename, from_epoch, kind_of
from ingest.chats.jsonio import read_whole
from ingest.chats.model import ParsedChat, ParsedMessage
from ingest.chats.source import Input

FILE = re.compile(r"^message_(\d+)\.json$", re.I)
_MEDIA = (("photos", "image"), ("videos", "video"), ("audio_files", "audio"), ("files", "file"),
          ("gifs", "gif"))
_SYSTEM_TYPES = frozenset(("Subscribe", "Unsubscribe", "Call"))


def repair(text: str) -> str:
    """UTF-8 that was read as Latin-1, put back; anything else as it is."""
    if not text or text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def threads(inputs: list[Input]) -> list[list[Input]]:
    """``message_N.json`` files by folder, each folder's highest number first."""
    by_dir: dict[str, list[Input]] = {}
    for inp in inputs:
        if FILE.match(inp.basename) or len(inputs) == 1:
            by_dir.setdefault(inp.dirname, []).append(inp)
    return [sorted(files, key=_number, reverse=True) for _, files in sorted(by_dir.items())]


def _number(inp: Input) -> int:
    m = FILE.match(inp.basename)
    return int(m.group(1)) if m else 0


def chats(groups: list[list[Input]], ctx: Context) -> Iterator[ParsedChat]:
    for files in groups:
        docs = _documents(files, ctx)
        first = next(docs, None)
        if first is None:
            continue
        messages = _messages(first, docs, ctx)
        head = next(messages, None)
        if head is None:
            continue
        yield ParsedChat(name=_title(first[1]), platform="messenger",
                         messages=_chain(head, messages))


def _documents(files: list[Input], ctx: Context) -> Iterator[tuple[Input, dict]]:
    for inp in files:
        doc = read_whole(inp, ctx.limits.max_buffered, ctx.progress)
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            ctx.warn(inp.name, "not a Messenger message file; skipped")
            continue
        yield inp, doc


def _title(doc: dict) -> str:
    old = "threadName" not in doc
    title = doc.get("title") if old else doc.get("threadName")
    if isinstance(title, str) and title.strip():
        return repair(title).strip() if old else title.strip()
    names = []
    for p in doc.get("participants") or ():
        name = p.get("name") if isinstance(p, dict) else p
        if isinstance(name, str):
            names.append(repair(name) if old else name)
    return ", ".join(names) or "Messenger chat"


def _messages(first: tuple[Input, dict], rest: Iterator[tuple[Input, dict]],
              ctx: Context) -> Iterator[ParsedMessage]:
    doc: tuple[Input, dict] | None = first
    while doc is not None:
        inp, data = doc
        old = "threadName" not in data
        parsed = []
        for n, raw in enumerate(reversed(data["messages"])):
            message = _message(raw, old, ctx, f"{inp.name} message {len(data['messages']) - n}")
            if message is not None:
                parsed.append(message)
        parsed.sort(key=lambda m: m.time)
        yield from parsed
        doc = next(rest, None)


def _message(raw: Any, old: bool, ctx: Context, where: str) -> ParsedMessage | None:
    try:
        fix = repair if old else _same
        if old:
            author = fix(str(raw.get("sender_name") or "(unknown)"))
            time = from_epoch(raw["timestamp_ms"], 1000)
            text = fix(str(raw.get("content") or ""))
            deleted = bool(raw.get("is_unsent"))
            files = []
            for key, kind in _MEDIA:
                for item in raw.get(key) or ():
                    uri = item.get("uri") if isinstance(item, dict) else None
                    files.append(attachment(kind, basename(uri) if uri else None))
            sticker = raw.get("sticker")
            if isinstance(sticker, dict):
                files.append(attachment("sticker", basename(str(sticker.get("uri") or ""))
                                        or None))
            share = raw.get("share")
            if isinstance(share, dict) and share.get("link"):
                files.append(attachment("link", str(share["link"])))
        else:
            author = str(raw.get("senderName") or "(unknown)")
            time = from_epoch(raw["timestamp"], 1000)
            text = str(raw.get("text") or "")
            deleted = bool(raw.get("isUnsent"))
            files = []
            for item in raw.get("media") or ():
                uri = item.get("uri") if isinstance(item, dict) else None
                files.append(attachment(kind_of(uri, "media"), basename(uri) if uri else None))
        counts: dict[str, int] = {}
        for r in raw.get("reactions") or ():
            if isinstance(r, dict) and r.get("reaction"):
                emoji = fix(str(r["reaction"]))
                counts[emoji] = counts.get(emoji, 0) + 1
        return ParsedMessage(
            time=time, author=author, text="" if deleted else text,
            kind="system" if raw.get("type") in _SYSTEM_TYPES else "message",
            attachments=files, reactions=[{"emoji": e, "count": c} for e, c in counts.items()],
            deleted=deleted)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
        ctx.warn(where, f"a message that cannot be read was skipped ({e})")
        return None


def _same(text: str) -> str:
    return text


def _chain(first: ParsedMessage, rest: Iterator[ParsedMessage]) -> Iterator[ParsedMessage]:
    yield first
    yield from rest
