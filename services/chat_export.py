"""An imported chat as a file: JSON (``{chat, messages}``), CSV, Markdown or plain text,
produced page by page so a chat of any length streams in bounded memory."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator

from ingest.csv_tables import write_csv
from services.chat_imports import chat_view, line_view
from store.base import ChatLine, ImportedChat, Store
from store.ids import iso

FORMATS = {"json": "application/json", "csv": "text/csv", "md": "text/markdown",
           "txt": "text/plain"}
PAGE = 1000
CSV_HEADER = ["id", "seq", "time", "author", "kind", "text", "replyTo", "attachments",
              "reactions", "edited", "deleted"]


async def _pages(store: Store, chat_id: str) -> AsyncIterator[list[ChatLine]]:
    cursor = None
    while True:
        page = await store.chats.list_lines(chat_id, cursor=cursor, limit=PAGE)
        if page.items:
            yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _stamp(m: ChatLine) -> str:
    return m.time.strftime("%Y-%m-%d %H:%M:%S")


def _extras(m: ChatLine) -> str:
    parts = [f"[{a.get('kind', 'file')}{': ' + a['name'] if a.get('name') else ''}]"
             for a in m.attachments]
    if m.reactions:
        parts.append(" ".join(f"{r['emoji']}×{r['count']}" for r in m.reactions))
    if m.edited:
        parts.append("(edited)")
    if m.deleted:
        parts.append("(deleted)")
    return (" " + " ".join(parts)) if parts else ""


async def render(store: Store, chat: ImportedChat, fmt: str) -> AsyncIterator[str]:
    """Text pieces of the export, in order."""
    if fmt == "json":
        yield '{"chat": ' + json.dumps(chat_view(chat), ensure_ascii=False) + ', "messages": ['
        first = True
        async for page in _pages(store, chat.id):
            body = ",\n".join(json.dumps(line_view(m), ensure_ascii=False) for m in page)
            yield ("" if first else ",\n") + body
            first = False
        yield "]}\n"
    elif fmt == "csv":
        header: list[str] | None = CSV_HEADER
        async for page in _pages(store, chat.id):
            rows = [[m.id, m.seq, iso(m.time), m.author, m.kind, m.text, m.reply_to or "",
                     json.dumps(list(m.attachments), ensure_ascii=False),
                     json.dumps(list(m.reactions), ensure_ascii=False), m.edited, m.deleted]
                    for m in page]
            yield "".join(write_csv(header, rows))
            header = None
        if header is not None:  # no messages: still a header
            yield "".join(write_csv(header, []))
    elif fmt == "md":
        who = ", ".join(f"{p.name} ({p.messages})" for p in chat.participants)
        yield (f"# {chat.name}\n\n*{chat.platform} · {chat.message_count} messages · "
               f"{iso(chat.first_time) or '—'} – {iso(chat.last_time) or '—'}*\n\n"
               f"Participants: {who or '—'}\n\n")
        async for page in _pages(store, chat.id):
            out = []
            for m in page:
                quoted = "\n".join("> " + line for line in (m.text or "").split("\n"))
                if m.kind == "system":
                    out.append(f"*{_stamp(m)} — {m.text}*{_extras(m)}\n")
                else:
                    out.append(f"**{m.author}** · {_stamp(m)}{_extras(m)}\n{quoted}\n")
            yield "\n".join(out) + "\n"
    elif fmt == "txt":
        async for page in _pages(store, chat.id):
            yield "".join(
                f"[{_stamp(m)}] " + (f"{m.text}" if m.kind == "system"
                                     else f"{m.author}: {m.text}") + _extras(m) + "\n"
                for m in page)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
