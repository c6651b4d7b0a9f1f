"""An export parsed in a child process, its messages sent back over a pipe in batches.

Parsing is pure Python: in the server's process it would share one interpreter lock with
the store's inserts and the event loop. In a child it runs on its own core; the pipe's
buffer bounds how far it runs ahead (a full pipe blocks its ``send``). Messages travel as
``MessageRow`` tuples, which pickle several times faster than the dataclass and go to the
store as they are.

Messages on the pipe: ``("chat", name, platform)``, ``("lines", count, position, size)``
followed by the batch's rows pickled on their own (``PickledRows``), ``("parsed", count,
position, size)`` (progress between batches), then ``("done", warnings)``, or ``("failed",
reason, message, details)`` for a ChatFormatError, or ``("crashed", text)``.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import overload

from ingest.chats import open_export
from ingest.chats.model import ChatFormatError, MessageRow, message_row


class PickledRows(Sequence[MessageRow]):
    """A batch as the pipe brought it, unpickled when first read: by the store's writer
    thread, which reads it anyway, rather than by the thread reading the pipe. Two threads
    of the server busy at once take turns with the interpreter lock at every row the writer
    binds (it lets go of the lock for each row's insert); one of them is mostly waiting."""

    def __init__(self, data: bytes, count: int):
        self._data: bytes | None = data
        self._count = count
        self._rows: list[MessageRow] = []

    def _read(self) -> list[MessageRow]:
        if self._data is not None:
            self._rows, self._data = pickle.loads(self._data), None
        return self._rows

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> MessageRow: ...

    @overload
    def __getitem__(self, i: slice) -> list[MessageRow]: ...

    def __getitem__(self, i: int | slice) -> MessageRow | list[MessageRow]:
        return self._read()[i]

    def __iter__(self) -> Iterator[MessageRow]:
        return iter(self._read())


def receive_rows(conn: Connection, count: int) -> PickledRows:
    """The batch that follows a ``("lines", count, …)`` message."""
    return PickledRows(conn.recv_bytes(), count)


def _send_rows(conn: Connection, rows: list[MessageRow], position: int, size: int) -> None:
    conn.send(("lines", len(rows), position, size))
    conn.send_bytes(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))


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
                        _send_rows(conn, rows, export.position, export.size)
                        rows = []
                    else:
                        conn.send(("parsed", len(rows), export.position, export.size))
                if rows:
                    _send_rows(conn, rows, export.position, export.size)
            conn.send(("done", export.warnings))
    except ChatFormatError as exc:
        conn.send(("failed", exc.reason, exc.message, exc.details))
    except Exception as exc:  # reported to the parent, which fails the job with it
        conn.send(("crashed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
