"""An export parsed in a child process, its messages sent back over a pipe in batches.

Parsing is pure Python: in the server's process it would share one interpreter lock with
the store's inserts and the event loop. In a child it runs on its own core; the pipe's
buffer bounds how far it runs ahead (a full pipe blocks its ``send``). Messages travel as
``MessageRow`` tuples, which pickle several times faster than the dataclass and go to the
store as they are.

Messages on the pipe: ``("chat", name, platform)``, ``("lines", [row, …], position,
size)``, ``("parsed", count, position, size)`` (progress between batches), then
``("done", warnings)``, or ``("failed", reason, message, details)`` for a ChatFormatError,
or ``("crashed", text)``.
"""
from __future__ import annotations

from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.chats import open_export
from ingest.chats.model import ChatFormatError, MessageRow, message_row


def parse_to(conn: Connection, path: str, filename: str, platform: str | None,
             timezone: str, batch: int, progress_every: int) -> None:
    """The child's entry point: parse ``path`` and send what it holds over ``conn``."""
    try:
        with open_export(Path(path), filename, platform=platform, timezone=timezone) as export:
            for chat in export.chats():
                conn.send(("chat", chat.name, chat.platform))
                # Rows are taken progress_every at a time (islice and map loop in C):
                # between two sends there is no per-message work of this loop's own.
                messages = map(message_row, chat.messages)
                rows: list[MessageRow] = []
                while chunk := list(islice(messages, progress_every)):
                    rows += chunk
                    if len(rows) >= batch:
                        conn.send(("lines", rows, export.position, export.size))
                        rows = []
                    else:
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
