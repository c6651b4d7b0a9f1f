"""Where each packet record sits in a capture file: the offset index built at ingest.

``Layout`` walks a pcap or pcapng file record by record (headers only, no dissection) and
yields ``(offset, length, section)`` for each packet record, in the order tshark numbers
frames. With the section's preamble (pcap: the file header; pcapng: the section header and
interface blocks) a single frame can later be cut out as a tiny valid capture, so one
packet's dissection never makes tshark read the frames before it.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 16), b"\xa1\xb2\xc3\xd4": (">", 16),   # microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 16), b"\xa1\xb2\x3c\x4d": (">", 16),   # nanoseconds
    b"\x34\xcd\xb2\xa1": ("<", 24), b"\xa1\xb2\xcd\x34": (">", 24),   # Kuznetzov's modified
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
#: Block types Wireshark turns into frames: packet (obsolete), simple, enhanced, systemd journal.
PCAPNG_RECORDS = {2, 3, 6, 9}
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 22  # pcap record headers are read from the file this much at a time


class LayoutError(Exception):
    """The file is neither pcap nor pcapng (the index is then simply not built)."""


@dataclass
class Section:
    preamble: bytearray = field(default_factory=bytearray)
    link_types: list[int] = field(default_factory=list)


class Record(NamedTuple):  # a tuple: one is made per frame
    offset: int
    length: int
    section: int


class Layout:
    """Iterate ``records()`` once; ``sections`` fills in as the walk goes."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.size = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(4)
        fh.seek(0)
        if head in PCAP_MAGICS:
            self.format = "pcap"
        elif len(head) == 4 and struct.unpack("<I", head)[0] == PCAPNG_SHB:
            self.format = "pcapng"
        else:
            raise LayoutError("not a pcap or pcapng file")
        self.sections: list[Section] = []
        self.complete = False  # True once the walk reached the end without a cut record

    def records(self) -> Iterator[Record]:
        yield from (self._pcap() if self.format == "pcap" else self._pcapng())

    def _pcap(self) -> Iterator[Record]:
        fh = self.fh
        header = fh.read(24)
        if len(header) < 24:
            return
        endian, rec_len = PCAP_MAGICS[header[:4]]
        link = struct.unpack(endian + "I", header[20:24])[0] & 0x0FFFFFFF
        self.sections.append(Section(bytearray(header), [link]))
        offset = 24
        unpack = struct.Struct(endian + "IIII").unpack_from
        # Headers are read out of large chunks, not one read and seek per record: walking
        # the index is then a small part of an ingest.
        buf, base = b"", offset
        while True:
            pos = offset - base
            if pos + rec_len > len(buf):
                fh.seek(offset)
                buf, base, pos = fh.read(CHUNK), offset, 0
                if len(buf) < rec_len:
                    self.complete = not buf
                    return
            caplen = unpack(buf, pos)[2]
            end = offset + rec_len + caplen
            if end > self.size or caplen > 0x10000000:
                return  # cut short in the middle of a packet
            yield Record(offset, rec_len + caplen, 0)
            offset = end

    def _pcapng(self) -> Iterator[Record]:
        fh = self.fh
        offset = 0
        endian = "<"
        while True:
            head = fh.read(12)
            if len(head) < 12:
                self.complete = not head
                return
            btype_le = struct.unpack("<I", head[:4])[0]
            if btype_le == PCAPNG_SHB:
                endian = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, length = struct.unpack(endian + "II", head[:8])
            if length < 12 or length % 4 or length > 0x10000000:
                return
            if offset + length > self.size:
                return  # cut short in the middle of a block
            fh.seek(offset + length)
            if btype == PCAPNG_SHB:
                self.sections.append(Section())
                self._append_block(offset, length)
            elif btype == PCAPNG_IDB:
                if not self.sections:
                    return
                self._append_block(offset, length)
                self.sections[-1].link_types.append(struct.unpack(endian + "H", head[8:10])[0])
            elif btype in PCAPNG_RECORDS:
                if not self.sections:
                    return
                yield Record(offset, length, len(self.sections) - 1)
            offset += length

    def _append_block(self, offset: int, length: int) -> None:
        here = self.fh.tell()
        self.fh.seek(offset)
        block = self.fh.read(length)
        self.fh.seek(here)
        if len(block) == length:
            self.sections[-1].preamble += block


def read_record(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    data = fh.read(length)
    if len(data) != length:
        raise LayoutError("the record lies beyond the end of the file")
    return data


def one_frame(preamble: bytes, record: bytes) -> bytes:
    """A valid capture holding just one record (pcap: file header + record; pcapng: the
    section's header and interface blocks + the packet block)."""
    return bytes(preamble) + record


class Frame(NamedTuple):
    ts: float | None  # epoch seconds (a pcapng simple packet block has none)
    orig_len: int  # the packet's length on the wire
    link: int  # its interface's link type
    data: bytes  # the captured bytes


def packet_reader(fmt: str, preamble: bytes) -> Callable[[bytes], bytes]:
    """A function: record of this section → the packet's captured bytes inside it (the
    section's byte order and record layout worked out once, for a call per frame: the
    split calls it on every frame)."""
    if fmt == "pcap":
        endian, rec_len = PCAP_MAGICS[bytes(preamble[:4])]
        caplen_at = struct.Struct(endian + "I").unpack_from

        def pcap_packet(record: bytes) -> bytes:
            return record[rec_len:rec_len + caplen_at(record, 8)[0]]

        return pcap_packet
    endian = "<" if bytes(preamble[8:12]) == b"\x4d\x3c\x2b\x1a" else ">"
    word = struct.Struct(endian + "I").unpack_from

    def pcapng_packet(record: bytes) -> bytes:
        btype = word(record, 0)[0]
        if btype in (6, 2):  # enhanced (or obsolete) packet block
            return record[28:28 + word(record, 20)[0]]
        if btype == 3:  # simple packet block: captured length is what the block holds
            return record[12:12 + min(word(record, 8)[0], len(record) - 16)]
        return b""

    return pcapng_packet


def frame_reader(fmt: str,
                 preamble: bytes | bytearray) -> Callable[[bytes], Frame | None]:
    """A function: record of this section → its ``Frame`` (None for a record that holds
    no packet): ``packet_reader``'s bytes plus the record's time, wire length and link
    type, with each interface's timestamp unit read from the section's preamble."""
    preamble = bytes(preamble)
    packet = packet_reader(fmt, preamble)
    if fmt == "pcap":
        endian = PCAP_MAGICS[preamble[:4]][0]
        unit = 1e-9 if preamble[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
        link = struct.unpack(endian + "I", preamble[20:24])[0] & 0x0FFFFFFF
        header = struct.Struct(endian + "IIII").unpack_from

        def pcap_frame(record: bytes) -> Frame:
            sec, frac, _caplen, orig = header(record, 0)
            return Frame(sec + frac * unit, orig, link, packet(record))

        return pcap_frame
    endian = "<" if preamble[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    interfaces = _interfaces(preamble, endian)
    word = struct.Struct(endian + "I").unpack_from
    enhanced = struct.Struct(endian + "IIIII").unpack_from
    obsolete = struct.Struct(endian + "HHIIII").unpack_from

    def pcapng_frame(record: bytes) -> Frame | None:
        btype = word(record, 0)[0]
        if btype in (6, 2):  # enhanced (or obsolete) packet block
            if btype == 6:
                iface, hi, lo, _caplen, orig = enhanced(record, 8)
            else:
                iface, _drops, hi, lo, _caplen, orig = obsolete(record, 8)
            link, unit = interfaces[iface] if iface < len(interfaces) else (1, 1e-6)
            return Frame(((hi << 32) | lo) * unit, orig, link, packet(record))
        if btype == 3:  # simple packet block: no time, the first interface's
            return Frame(None, word(record, 8)[0], interfaces[0][0] if interfaces else 1,
                         packet(record))
        return None

    return pcapng_frame


def packet_bytes(fmt: str, preamble: bytes, record: bytes) -> bytes:
    """The packet's captured bytes inside its record (for the hex view)."""
    return packet_reader(fmt, preamble)(record)


def _interfaces(preamble: bytes, endian: str) -> list[tuple[int, float]]:
    """(link type, seconds per timestamp tick) of each interface block in a pcapng
    section's preamble."""
    out, at = [], 0
    while at + 12 <= len(preamble):
        btype, length = struct.unpack_from(endian + "II", preamble, at)
        if length < 12:
            break
        if btype == PCAPNG_IDB and length >= 20:
            link = struct.unpack_from(endian + "H", preamble, at + 8)[0]
            out.append((link, _tsresol(preamble[at + 16:at + length - 4], endian)))
        at += length
    return out


def _tsresol(options: bytes, endian: str) -> float:
    at = 0
    while at + 4 <= len(options):
        code, size = struct.unpack_from(endian + "HH", options, at)
        if code == 0:
            break
        if code == 9 and size >= 1:  # if_tsresol: a power of 10, or of 2 with the top bit
            value = options[at + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
        at += 4 + (size + 3) // 4 * 4
    return 1e-6
