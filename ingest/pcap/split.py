"""Flow-partitioned parallel dissection: one capture as K smaller ones, dissected by K
``tshark`` processes at once, their lines merged back into the order and numbering a single
tshark prints.

Why the output is the same: Wireshark keeps its per-packet state in conversations (TCP
streams and reassembly, request/response matching, per-stream analysis), and a
conversation is between one pair of addresses. Packets are partitioned by their unordered
IP address pair (an ICMP/ICMPv6 error by the pair of the packet it quotes, so it meets that
conversation; everything that is not IP goes to part 0), so every part holds whole
conversations and tshark dissects each packet as it would in the whole file. What a part
cannot know is renumbered on the way back: frame numbers, ``tcp.stream``/``udp.stream``
(by first appearance, as tshark numbers them) and the frame numbers Info quotes ("request in
N", "Dup ACK N#1", …). ``tests/unit/test_pcap_split.py`` holds the merged output against
one tshark over every shared capture, a merge of many and a generated one.

Used for large, complete, single-section captures with one link type of Ethernet, Linux
cooked or raw IP, and nothing but packets besides the section's header and interfaces (no
decryption secrets or name blocks a part would lose); anything else takes the single pass.
"""
from __future__ import annotations

import io
import queue
import re
import threading
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.pcap.layout import Layout, LayoutError, Record, packet_reader

LINKS = {1: "eth", 113: "sll", 101: "raw", 228: "raw", 229: "raw"}
VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
ICMP_ERRORS = (3, 4, 5, 11, 12)
ICMP6_ERRORS = (1, 2, 3, 4)
CHUNK = 2000  # lines handed from a part's reader to the merge at a time
QUEUED_CHUNKS = 32
# Frame numbers Info quotes (col_append_frame_number in Wireshark's dissectors): ICMP/ICMPv6
# "(request in N)", "(reply in N)", "[reply in N]", fragments "[Reassembled in #N]", TCP
# "[TCP Dup ACK N#k]".
_QUOTED_FRAME = re.compile(r"(\b(?:request|reply|response) in #?|Reassembled in #|Dup ACK )(\d+)")


# -- partitioning -------------------------------------------------------------------------

def _ipv4_key(data: bytes, off: int, quoted: bool = False) -> bytes:
    if len(data) < off + 20:
        return b""
    a, b = data[off + 12:off + 16], data[off + 16:off + 20]
    if not quoted and data[off + 9] == 1 and not (data[off + 6] & 0x1F or data[off + 7]):
        icmp = off + (data[off] & 0x0F) * 4
        if len(data) > icmp and data[icmp] in ICMP_ERRORS:
            inner = _ipv4_key(data, icmp + 8, quoted=True)
            if inner:
                return inner
    return a + b if a <= b else b + a


def _ipv6_key(data: bytes, off: int, quoted: bool = False) -> bytes:
    if len(data) < off + 40:
        return b""
    a, b = data[off + 8:off + 24], data[off + 24:off + 40]
    if not quoted and data[off + 6] == 58 and len(data) > off + 40 and \
            data[off + 40] in ICMP6_ERRORS:
        inner = _ipv6_key(data, off + 48, quoted=True)
        if inner:
            return inner
    return a + b if a <= b else b + a


def flow_key(data: bytes, link: str) -> bytes:
    """The unordered address pair a packet's conversations live in; b"" for non-IP."""
    if link == "eth":
        if len(data) < 14:
            return b""
        etype, off = data[12] << 8 | data[13], 14
        while etype in VLAN_TYPES and len(data) >= off + 4:
            etype, off = data[off + 2] << 8 | data[off + 3], off + 4
    elif link == "sll":
        if len(data) < 16:
            return b""
        etype, off = data[14] << 8 | data[15], 16
    else:
        if not data:
            return b""
        version = data[0] >> 4
        etype, off = (0x0800 if version == 4 else 0x86DD if version == 6 else 0), 0
    if etype == 0x0800:
        return _ipv4_key(data, off)
    if etype == 0x86DD:
        return _ipv6_key(data, off)
    return b""


@dataclass
class Split:
    """The parts written, and where every frame of the whole capture went."""

    paths: list[Path]
    format: str
    link_types: list[int]
    preamble: bytes
    owner: bytearray = field(default_factory=bytearray)  # part of frame n at [n - 1]
    offsets: array = field(default_factory=lambda: array("Q"))
    lengths: array = field(default_factory=lambda: array("I"))
    numbers: list[array] = field(default_factory=list)  # per part: its frames' numbers

    def records(self) -> Iterator[Record]:
        return (Record(o, n, 0) for o, n in zip(self.offsets, self.lengths))


def split_capture(path: Path, workdir: Path, parts: int) -> Split | None:
    """Write ``parts`` captures into ``workdir`` holding whole conversations each, or None
    when this capture must take the single pass (see the module's docstring)."""
    with open(path, "rb") as fh:
        try:
            layout = Layout(fh)
        except LayoutError:
            return None
        if layout.size == 0:
            return None
        records = layout.records()
        first = next(records, None)
        if first is None or len(layout.sections) != 1:
            return None
        section = layout.sections[0]
        links = set(section.link_types)
        if len(links) != 1 or next(iter(links)) not in LINKS:
            return None
        link = LINKS[next(iter(links))]
        preamble = bytes(section.preamble)
        packet = packet_reader(layout.format, preamble)
        split = Split([Path(workdir) / f"part{k}.{layout.format}" for k in range(parts)],
                      layout.format, list(section.link_types), preamble,
                      numbers=[array("Q") for _ in range(parts)])
        outs = [open(p, "wb", buffering=1 << 20) for p in split.paths]
        # The records are read through a second handle (the walk keeps its own position).
        src = open(path, "rb", buffering=1 << 20)
        try:
            for out in outs:
                out.write(preamble)
            owner, offsets, lengths, numbers = (split.owner, split.offsets, split.lengths,
                                                split.numbers)
            crc = zlib.crc32
            n, at_src = 0, 0
            for offset, length, in_section in _chain(first, records):
                if in_section != 0:
                    return None
                if offset != at_src:
                    src.seek(offset)
                blob = src.read(length)
                at_src = offset + length
                key = flow_key(packet(blob), link)
                k = crc(key) % parts if key else 0
                outs[k].write(blob)
                n += 1
                owner.append(k)
                offsets.append(offset)
                lengths.append(length)
                numbers[k].append(n)
        finally:
            src.close()
            for out in outs:
                out.close()
        # Nothing in the file but the preamble and packets: a truncated file, or blocks
        # a part would lose (name resolution, decryption secrets, interfaces added later),
        # take the single pass.
        if not layout.complete or len(section.preamble) != len(preamble) or \
                len(preamble) + sum(lengths) != layout.size:
            return None
        return split


def _chain(first, rest):
    yield first
    yield from rest


# -- merging ------------------------------------------------------------------------------

class PartReader:
    """One part's tshark output, read in a thread: packet lines in chunks, then the tap
    report lines (``tail``)."""

    def __init__(self, stdout):
        self.queue: queue.Queue = queue.Queue(QUEUED_CHUNKS)
        self.tail: list[str] = []
        self.error: BaseException | None = None
        self._stdout = stdout
        self._thread = threading.Thread(target=self._read, daemon=True, name="tshark-part")
        self._thread.start()

    def _read(self) -> None:
        chunk: list[str] = []
        try:
            lines = io.TextIOWrapper(self._stdout, encoding="utf-8", errors="replace",
                                     newline="\n")
            for line in lines:
                if not line[:1].isdigit():
                    self.tail.append(line)
                    self.tail.extend(lines)
                    break
                chunk.append(line)
                if len(chunk) >= CHUNK:
                    self.queue.put(chunk)
                    chunk = []
        except BaseException as exc:  # surfaced by the merge
            self.error = exc
        finally:
            if chunk:
                self.queue.put(chunk)
            self.queue.put(None)

    def lines(self) -> Iterator[str]:
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            yield from chunk

    def drain(self) -> None:
        """Unblock the thread after an early stop (its process is being killed)."""
        while self._thread.is_alive():
            try:
                self.queue.get(timeout=0.1)
            except queue.Empty:
                pass


class PartsLost(Exception):
    """A part printed fewer or more frames than were written to it."""


def merged_rows(split: Split, readers: list[PartReader], n_fields: int,
                tcp_col: int, udp_col: int, info_col: int) -> Iterator[list]:
    """The parts' lines as one tshark would print them: field lists in frame order with
    the whole capture's frame numbers (an int in column 0) and stream indices."""
    sources = [r.lines() for r in readers]
    numbers = split.numbers
    # kind -> {(part, local index): global index}
    streams: dict[str, dict[tuple[int, str], str]] = {"tcp": {}, "udp": {}}

    def renumber(kind: str, part: int, value: str) -> str:
        if not value:
            return value
        table = streams[kind]
        out = []
        for local in value.split(","):
            got = table.get((part, local))
            if got is None:
                got = table[(part, local)] = str(len(table))
            out.append(got)
        return ",".join(out)

    for n, part in enumerate(split.owner, 1):
        line = next(sources[part], None)
        if line is None:
            raise PartsLost(f"part {part} ended before frame {n}")
        # text fields, but column 0 becomes the (int) frame number
        row: list[Any] = line.rstrip("\n").split("\t", n_fields - 1)
        if len(row) < n_fields:
            row += [""] * (n_fields - len(row))
        row[0] = n
        row[tcp_col] = renumber("tcp", part, row[tcp_col])
        row[udp_col] = renumber("udp", part, row[udp_col])
        info = row[info_col]
        if " in " in info or "Dup ACK" in info:
            local_numbers = numbers[part]
            # The lambda runs inside this sub() call, with this iteration's numbers.
            row[info_col] = _QUOTED_FRAME.sub(
                lambda m: f"{m[1]}{local_numbers[int(m[2]) - 1]}"  # noqa: B023
                if 0 < int(m[2]) <= len(local_numbers) else m[0], info)  # noqa: B023
        yield row
    for part, source in enumerate(sources):
        if next(source, None) is not None:
            raise PartsLost(f"part {part} printed more frames than it holds")

