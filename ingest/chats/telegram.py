"""Telegram Desktop's JSON export (``result.json``): one chat (``name``, ``type``, ``id``,
``messages``) or a whole account (``chats.list`` and ``left_chats.list``, each a chat).

Streamed with ijson one message at a time. For a whole account the parser's events pass
through a small filter that notes where each chat starts and its name (written before its
messages), so the messages of every chat are still built in C.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.chats.common import Context, attachment, basename, from_epoch, from_iso, grouped
from ingest.chats.jsonio import SCALARS, items, open_json, parse_events, scan_header
from ingest.chats.model import ParsedChat, ParsedMessage
from ingest.chats.source import Input

_CHAT_KEYS = frozenset(("name", "type", "id"))
_MEDIA_KIND = {"sticker": "sticker", "video_message": "video", "voice_message": "audio",
               "animation": "gif", "video_file": "video", "audio_file": "audio"}


def chats(inp: Input, whole_account: bool, ctx: Context) -> Iterator[ParsedChat]:
    rows = _account_rows(inp, ctx) if whole_account else _single_rows(inp, ctx)
    return grouped(rows, _chat_name, "telegram",
                   lambda meta, raw: _message(raw, meta, ctx, inp.name))


def _chat_name(meta: dict) -> str:
    name = meta.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    kind = meta.get("type")
    if kind == "saved_messages":
        return "Saved Messages"
    if kind == "replies":
        return "Replies"
    return "Telegram chat"


def _single_rows(inp: Input, ctx: Context) -> Iterator[tuple[Any, Any]]:
    header = scan_header(inp, "messages", _CHAT_KEYS)
    meta = _Meta(header)
    with open_json(inp, ctx.progress) as f:
        for raw in items(f, "messages.item", inp.name):
            yield meta, raw


class _Meta(dict):
    """A chat's scalars; equal only to itself, so that two chats of one name stay apart."""

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


def _account_rows(inp: Input, ctx: Context) -> Iterator[tuple[Any, Any]]:
    current = [_Meta()]

    def watched(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for event in events:
            prefix = event[0]
            if prefix[:11] == "left_chats.":
                prefix = prefix[5:]
                event = (prefix, event[1], event[2])
            if prefix[:15] == "chats.list.item" and len(prefix) < 21:
                if prefix == "chats.list.item":
                    if event[1] == "start_map":
                        current[0] = _Meta()
                elif event[1] in SCALARS and prefix[16:] in _CHAT_KEYS:
                    current[0][prefix[16:]] = event[2]
            yield event

    with open_json(inp, ctx.progress) as f:
        for raw in items(watched(parse_events(f, inp.name)), "chats.list.item.messages.item",
                         inp.name):
            yield current[0], raw


def text_of(value: Any) -> str:
    """``text`` is a string or a list of strings and entity objects (``{type, text}``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       if isinstance(part, dict) else "" for part in value)
    return str(value)


def _names(value: Any) -> str:
    if isinstance(value, list):
        names = [str(v) if v is not None else "(deleted account)" for v in value]
        return ", ".join(names)
    return ""


def _action(raw: dict, actor: str) -> str:
    action = str(raw.get("action") or "")
    title = raw.get("title") or raw.get("new_title")
    members = _names(raw.get("members"))
    who = actor or "Someone"
    sentences = {
        "create_group": f'{who} created the group "{title}"' if title else f"{who} created "
                        "the group",
        "create_channel": f'{who} created the channel "{title}"' if title else f"{who} "
                          "created the channel",
        "edit_group_title": f'{who} changed the group name to "{title}"',
        "edit_group_photo": f"{who} changed the group photo",
        "delete_group_photo": f"{who} removed the group photo",
        "invite_members": f"{who} added {members}" if members else f"{who} added members",
        "remove_members": (f"{who} left" if members == actor else f"{who} removed {members}")
                          if members else f"{who} removed members",
        "join_group_by_link": f"{who} joined the group via an invite link",
        "join_group_by_request": f"{who} joined the group",
        "migrate_to_supergroup": f"{who} converted the group to a supergroup",
        "migrate_from_group": f'{who} converted the group "{title}" to a supergroup'
                              if title else f"{who} converted the group to a supergroup",
        "pin_message": f"{who} pinned a message",
        "clear_history": f"{who} cleared the history",
        "phone_call": f"{who} called" + (f" ({raw['duration_seconds']} s)"
                                         if raw.get("duration_seconds") else ""),
        "group_call": f"{who} started a video chat",
        "topic_created": f'{who} created the topic "{title}"',
        "take_screenshot": f"{who} took a screenshot",
        "joined_telegram": f"{who} joined Telegram",
    }
    if action in sentences:
        return sentences[action]
    if raw.get("information_text"):
        return str(raw["information_text"])
    return f"{who} {action.replace('_', ' ')}".strip() if action else who


def _attachments(raw: dict) -> list[dict]:
    found = []
    if "photo" in raw:
        found.append(attachment("image", _file_name(raw["photo"])))
    if "file" in raw or "media_type" in raw:
        kind = _MEDIA_KIND.get(str(raw.get("media_type") or ""), "file")
        name = raw.get("file_name") or _file_name(raw.get("file"))
        found.append(attachment(kind, name if isinstance(name, str) else None))
    if "contact_information" in raw or "contact_vcard" in raw:
        found.append(attachment("contact"))
    if "location_information" in raw or "place_name" in raw:
        found.append(attachment("location", raw.get("place_name")))
    if isinstance(raw.get("poll"), dict):
        found.append(attachment("poll", raw["poll"].get("question")))
    if "game_title" in raw:
        found.append(attachment("game", raw.get("game_title")))
    if "invoice_information" in raw:
        found.append(attachment("invoice"))
    return found


def _file_name(path: Any) -> str | None:
    """A file's name from its path in the export; "(File not included…)" has none."""
    if not isinstance(path, str) or not path or path.startswith("("):
        return None
    return basename(path)


def _reactions(value: Any) -> list[dict]:
    found = []
    if isinstance(value, list):
        for r in value:
            if not isinstance(r, dict):
                continue
            emoji = r.get("emoji") or r.get("document_id") or r.get("type") or "?"
            found.append({"emoji": str(emoji), "count": int(r.get("count") or 1)})
    return found


def _message(raw: Any, meta: dict, ctx: Context, name: str) -> ParsedMessage | None:
    where = f"message {raw.get('id')}" if isinstance(raw, dict) else name
    try:
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        kind = raw.get("type", "message")
        if kind == "unsupported":
            ctx.warn(where, "a message the export could not include was skipped")
            return None
        if raw.get("date_unixtime") is not None:
            t = from_epoch(raw["date_unixtime"])
        else:
            t = from_iso(str(raw["date"]), ctx)
        text = text_of(raw.get("text"))
        reply = raw.get("reply_to_message_id")
        if kind == "service":
            actor = raw.get("actor")
            actor = "(deleted account)" if actor is None and "actor" in raw else str(actor or "")
            sentence = _action(raw, actor)
            if raw.get("action") == "pin_message" and raw.get("message_id") is not None:
                reply = raw["message_id"]
            return ParsedMessage(
                time=t, author=actor, text=f"{sentence}\n{text}" if text else sentence,
                kind="system", author_id=_str(raw.get("actor_id")), source_id=_str(raw.get("id")),
                reply_source=_str(reply))
        if "from" in raw:
            author = "(deleted account)" if raw["from"] is None else str(raw["from"])
        else:
            author = str(raw.get("author") or meta.get("name") or "(unknown)")
        return ParsedMessage(
            time=t, author=author, text=text, author_id=_str(raw.get("from_id")),
            source_id=_str(raw.get("id")), reply_source=_str(reply),
            attachments=_attachments(raw), reactions=_reactions(raw.get("reactions")),
            edited="edited" in raw or "edited_unixtime" in raw)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
        ctx.warn(where, f"a message that cannot be read was skipped ({e})")
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
