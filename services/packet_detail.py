"""One packet's dissection for ``pcap:packet``: from the capture's sharkd session when it has
one, else from its stream's context.

*capture* context: the whole capture loaded in a sharkd session (``services.dissections``), the
view Wireshark shows: TCP payloads reassembled across segments, a segment in the middle of a
PDU saying in which frame it is reassembled, requests linked to responses.

*stream* context, for captures above ``DISSECT_SESSION_MAX_MB``, with sessions turned off, or
while a session still loads past ``DISSECT_LOAD_WAIT_S``: a small capture cut out of the file
through the offset index holds the frame, the frames of its TCP/UDP stream before it (at most
``CONTEXT_FRAMES`` and ``CONTEXT_BYTES``), the stream's first two (the handshake, so sequence
numbers stay relative to the same start), the capture's first frame and the frame just before
it (the frame layer's times then read as in the whole capture). A PDU that ends in this frame
is reassembled as Wireshark does it; what only later frames tell (the frame a segment's PDU is
reassembled in, a request's response) is missing. Frame numbers and the stream index are given
back their values in the whole capture. A frame outside TCP/UDP is cut with the first and the
previous frame only (*frame* context).
"""
from __future__ import annotations

import asyncio
import base64
import os
from typing import Protocol

from ingest.pcap import layout as layouts
from ingest.pcap.frame_tree import FrameView, renumber
from services.dissections import Dissections
from store.base import FileRecord, Job, PcapPacket
from store.errors import EventError

CONTEXT_FRAMES = 500
CONTEXT_BYTES = 8 << 20
STREAM_HEAD = 2


class CaptureFiles(Protocol):
    """What the capture service lends: its store and local paths to the captures."""

    @property
    def store(self): ...

    def capture_path(self, record, layout: dict): ...


class PacketDetail:
    def __init__(self, captures: CaptureFiles, dissections: Dissections, *,
                 session_max_bytes: int):
        self.captures = captures
        self.dissections = dissections
        self.session_max_bytes = session_max_bytes

    async def view(self, record: FileRecord, job: Job, packet: PcapPacket,
                   layout: dict) -> tuple[str, FrameView]:
        """(context, view) of one frame: context is ``capture``, ``stream`` or ``frame``."""
        async with self.captures.capture_path(record, layout) as path:
            size = await asyncio.to_thread(os.path.getsize, path)
            if self.dissections.max_sessions > 0 and size <= self.session_max_bytes:
                view = await self.dissections.frame((record.id, job.attempt), str(path),
                                                    packet.number)
                if view is not None:
                    return "capture", view
            return await self._cut(record.id, path, layout, packet)

    async def _cut(self, file_id: str, path, layout: dict,
                   packet: PcapPacket) -> tuple[str, FrameView]:
        if packet.offset is None or not layout.get("preambles"):
            raise EventError("unavailable", "this capture is too large to dissect whole and "
                             "its format has no offset index to cut the frame's context out")
        store = self.captures.store
        chosen: dict[int, PcapPacket] = {packet.number: packet}
        streams: dict[str, int] = {}
        if packet.l4 and packet.stream is not None:
            streams[f"{packet.l4}.stream"] = packet.stream
            head = await store.stream_packets(file_id, packet.l4, packet.stream, STREAM_HEAD)
            before = await store.stream_packets(file_id, packet.l4, packet.stream,
                                                CONTEXT_FRAMES, through=packet.number)
            total = 0
            for p in reversed(before):  # nearest first, within the byte budget
                total += p.reclen or 0
                if total > CONTEXT_BYTES:
                    break
                chosen[p.number] = p
            for p in head:
                chosen.setdefault(p.number, p)
        for number in (1, packet.number - 1):
            other = await store.get_packet(file_id, number) if number >= 1 else None
            if other is not None:
                chosen.setdefault(number, other)
        frames = sorted(n for n, p in chosen.items()
                        if p.section == packet.section and p.offset is not None
                        and p.reclen is not None and n <= packet.number)
        preamble = base64.b64decode(layout["preambles"][packet.section])
        capture = await asyncio.to_thread(_cut_out, path, preamble,
                                          [chosen[n] for n in frames])
        view = await self.dissections.cut_frame(capture, frames.index(packet.number) + 1)
        return ("stream" if streams else "frame"), renumber(view, frames, streams)


def _cut_out(path, preamble: bytes, packets: list[PcapPacket]) -> bytes:
    parts = [preamble]
    with open(path, "rb") as fh:
        for p in packets:
            assert p.offset is not None and p.reclen is not None  # filtered by the caller
            parts.append(layouts.read_record(fh, p.offset, p.reclen))
    return b"".join(parts)
