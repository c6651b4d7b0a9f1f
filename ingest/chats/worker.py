"""An export parsed in a child process, its messages sent back over a pipe in batches.

Parsing is pure Python: in the server's process it would share one interpreter lock with
the store's inserts and the event loop. In a child it runs on its own core; the pipe's
buffer bounds how far it runs ahead (a full pipe blocks its ``send``). Messages travel as
plain tuples, which pickle several times faster than the dataclass.

Messages on the pipe: ``("chat", name, platform)``, ``("lines", [row, …], position,
size)``, ``("parsed", count, position, size)`` (progress between batches), then
``("done", warnings)``, or ``("failed", reason, message, details)`` for a ChatFormatError,
or ``("crashed", text)``.
"""
from __future__ import annotations

from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.chats import open_export
from ingest.chats.model import ChatFormatError, ParsedMessage

Row = tuple


def to_row(m: ParsedMessage) -> Row:
    return (m.time.timestamp(), m.author, m.text, m.kind, m.author_id, m.source_id,
            m.reply_source, m.attachments, m.reactions, m.edited, m.deleted)


def from_row(r: Row) -> ParsedMessage:
    return ParsedMessage(datetime.fromtimestamp(r[0], UTC), r[1], r[2], r[3], r[4], r[5],
                         r[6], r[7], r[8], r[9], r[10])


def parse_to(conn: Connection, path: str, filename: str, platform: str | None,
             timezone: str, batch: int, progress_every: int) -> None:
    """The child's entry point: parse ``path`` and send what it holds over ``conn``."""
    try:
        with open_export(Path(path), filename, platform=platform, timezone=timezone) as export:
            for chat in export.chats():
                conn.send(("chat", chat.name, chat.platform))
                rows: list[Row] = []
                for message in chat.messages:
                    rows.append(to_row(message))
                    if len(rows) >= batch:
                        conn.send(("lines", rows, export.position, export.size))
                        rows = []
                    elif len(rows) % progress_every == 0:
                        conn.send(("parsed", len(rows), export.position, export.size))
                if rows:
                    conn.send(("lines", rows, export.position, export.size))
            conn.send(("done", export.warnings))
    except ChatFormatError as exc:
        conn.send(("failed", exc.reason, exc.message, exc.details))
    except Exception as exc:  # reported to the parent, which fails the job with it
        conn.send(("crashed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
