"""ChatGPT's ``conversations.json``: a list of conversations, each a tree of messages
(``mapping``: node id → ``{message, parent, children}``) of which the page shows one branch,
from ``current_node`` up through ``parent``. Only that branch is imported, oldest first,
without the nodes a reader does not see (system and tool messages, hidden context, empty
text, non-text content). One chat per conversation, named by its title; conversations are
streamed one at a time with ijson (a conversation is held whole to walk its tree)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ingest.chats.common import Context, attachment, from_epoch, kind_of
from ingest.chats.jsonio import items, open_json
from ingest.chats.model import ParsedChat, ParsedMessage
from ingest.chats.source import Input

_TEXT_TYPES = frozenset(("text", "multimodal_text"))
_ROLES = frozenset(("user", "assistant"))


def chats(inputs: list[Input], ctx: Context) -> Iterator[ParsedChat]:
    for inp in inputs:
        with open_json(inp, ctx.progress) as f:
            for n, conversation in enumerate(items(f, "item", inp.name), 1):
                if not isinstance(conversation, dict):
                    ctx.warn(f"{inp.name} item {n}", "not a conversation; skipped")
                    continue
                messages = _messages(conversation, ctx, f"conversation {n}")
                if messages:
                    title = str(conversation.get("title") or "").strip() or "ChatGPT conversation"
                    yield ParsedChat(name=title, platform="chatgpt", messages=iter(messages))


def _branch(mapping: dict, current: Any) -> list[dict]:
    """The nodes from the root to ``current`` (the last node when it is missing)."""
    if current not in mapping:
        leaves = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")]
        current = leaves[-1] if leaves else None
    path, seen = [], set()
    while current is not None and current in mapping and current not in seen:
        seen.add(current)
        node = mapping[current]
        if not isinstance(node, dict):
            break
        path.append(node)
        current = node.get("parent")
    path.reverse()
    return path


def _messages(conversation: dict, ctx: Context, where: str) -> list[ParsedMessage]:
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict):
        ctx.warn(where, "a conversation without messages (no mapping) was skipped")
        return []
    last: datetime | None = None
    try:
        start = conversation.get("create_time")
        if start is not None:
            last = from_epoch(start)
    except (TypeError, ValueError, ArithmeticError):
        last = None
    found = []
    for node in _branch(mapping, conversation.get("current_node")):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        try:
            parsed = _message(node, message, last)
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
            ctx.warn(f"{where} node {node.get('id')}", f"a message that cannot be read was "
                     f"skipped ({e})")
            continue
        if parsed is not None:
            found.append(parsed)
            last = parsed.time
    return found


def _message(node: dict, message: dict, last: datetime | None) -> ParsedMessage | None:
    role = (message.get("author") or {}).get("role")
    metadata = message.get("metadata") or {}
    content = message.get("content") or {}
    if role not in _ROLES or metadata.get("is_visually_hidden_from_conversation"):
        return None
    if message.get("recipient", "all") != "all":
        return None  # a call to a tool
    if content.get("content_type") not in _TEXT_TYPES:
        return None
    texts, attachments = [], []
    for part in content.get("parts") or ():
        if isinstance(part, str):
            if part:
                texts.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("content_type") or "")
            if "image" in kind:
                attachments.append(attachment("image"))
            elif "audio" in kind:
                attachments.append(attachment("audio"))
            elif "video" in kind:
                attachments.append(attachment("video"))
            elif isinstance(part.get("text"), str) and part["text"]:
                texts.append(part["text"])
    named = []
    for a in metadata.get("attachments") or ():
        if isinstance(a, dict):
            name = a.get("name")
            mime = str(a.get("mime_type") or a.get("mimeType") or "").split("/")[0]
            named.append(attachment(mime if mime in ("image", "video", "audio")
                                    else kind_of(name), name))
    if named:  # the uploads, by name: they are also the parts' images
        attachments = named
    text = "\n\n".join(texts).strip()
    if not text and not attachments:
        return None
    created = message.get("create_time")
    time = from_epoch(created) if created is not None else last
    if time is None:
        raise ValueError("no time")
    return ParsedMessage(time=time, author=str(role), text=text,
                         source_id=str(message.get("id") or node.get("id")),
                         attachments=attachments)
