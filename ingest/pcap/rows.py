"""The row an ingest makes per frame; the store keeps it as it is (``store.base`` re-exports
it), so the parser never imports the store."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PcapPacket:
    """One frame's row. Not frozen, unlike the other records: an ingest makes one per frame
    (150 000 for a 40 MB capture), and a frozen dataclass costs eight times as much to
    build."""

    number: int
    ts: float  # epoch seconds
    length: int
    caplen: int
    src: str
    dst: str
    sport: int | None
    dport: int | None
    l4: str | None  # tcp | udp
    stream: int | None
    protocol: str
    info: str
    offset: int | None  # record offset in the (uncompressed) file
    reclen: int | None
    section: int = 0
