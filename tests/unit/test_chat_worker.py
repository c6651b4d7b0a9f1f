"""The parser child's side of the pipe (ingest.chats.worker), run in this process: what it
sends for an export, and the batches the server hands on without reading them."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

from ingest.chats import open_export, worker
from ingest.chats.model import message_row

DATA = Path(__file__).resolve().parents[1] / "data" / "chats"
FAMILY = DATA / "whatsapp" / "WhatsApp Chat with Family.txt"


def test_batches_cross_as_rows_and_are_read_where_they_are_used():
    receiving, sending = multiprocessing.Pipe(duplex=False)
    worker.parse_to(sending, str(FAMILY), FAMILY.name, None, "UTC", 4, 2)
    with open_export(FAMILY, FAMILY.name, timezone="UTC") as export:
        [chat] = list(export.chats())
        expected = [message_row(m) for m in chat.messages]
    got, kinds = [], []
    while True:
        message = receiving.recv()
        kinds.append(message[0])
        if message[0] == "lines":
            rows = worker.receive_rows(receiving, message[1])
            assert len(rows) == message[1] and rows._data is not None  # not unpickled yet
            got += list(rows)
            assert rows[0] == got[-len(rows)]
        if message[0] in ("done", "failed", "crashed"):
            break
    assert kinds[0] == "chat" and kinds[-1] == "done" and "parsed" in kinds
    assert got == expected and len(expected) > 4
