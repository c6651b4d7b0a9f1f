"""What the chat knows about a file: a CSV column profile, a capture's statistics, a text
excerpt. Plain functions over a path, importable without the server; each reads the file in
one streaming pass (memory stays flat) and is meant to run in a worker thread.

- ``profile_csv``: per column its type (inferred as ``ingest.csv_tables`` does), count,
  missing cells, distinct values, min/max/mean (numbers), earliest/latest (datetimes), top
  values; plus the first rows as a sample.
- ``capture_stats``: a quick pure-Python pass over a pcap/pcapng file: packets, bytes,
  first/last time, link types, top talkers (IP endpoints by bytes, as Wireshark's Endpoints),
  protocols, IP and TCP/UDP conversations. Used when the PCAP domain has no ingest summary.
- ``text_excerpt``: the start of a text file, its size and line count.
"""
from __future__ import annotations

import csv
import ipaddress
import math
import mmap
import struct
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ingest.csv_tables import CsvError, _kind, _pick, _reader, sniff
from ingest.pcap.layout import Layout, LayoutError, frame_reader

SAMPLE_ROWS = 5
TOP_VALUES = 5
MAX_DISTINCT = 20_000  # per column; past it distinct counts are "at least"
MAX_CELL_SHOWN = 80
MISSING = {"", "na", "n/a", "nan", "null", "none", "-"}

__all__ = ["profile_csv", "capture_stats", "text_excerpt", "CsvError", "CaptureError"]


# -- CSV ----------------------------------------------------------------------------------

class _Column:
    __slots__ = ("name", "kinds", "count", "missing", "values", "capped", "nmin", "nmax",
                 "nsum", "ncount", "dmin", "dmax")

    def __init__(self, name: str):
        self.name = name
        self.kinds = {"number", "bool", "datetime", "text"}
        self.count = self.missing = self.ncount = 0
        self.values: Counter = Counter()
        self.capped = False
        self.nmin: float | None = None
        self.nmax: float | None = None
        self.nsum = 0.0
        self.dmin: tuple[datetime, str] | None = None  # (parsed, raw)
        self.dmax: tuple[datetime, str] | None = None

    def add(self, cell: str) -> None:
        text = cell.strip()
        if text.lower() in MISSING:
            self.missing += 1
            return
        self.count += 1
        if len(self.kinds) > 1:
            self.kinds &= _kind(text)
        if text in self.values or len(self.values) < MAX_DISTINCT:
            self.values[text] += 1
        else:
            self.capped = True
        if "number" in self.kinds:
            number = float(text)
            self.ncount += 1
            self.nsum += number
            self.nmin = number if self.nmin is None else min(self.nmin, number)
            self.nmax = number if self.nmax is None else max(self.nmax, number)
        if "datetime" in self.kinds:
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return
            key = when if when.tzinfo else when.replace(tzinfo=UTC)
            if self.dmin is None or key < self.dmin[0]:
                self.dmin = (key, text)
            if self.dmax is None or key > self.dmax[0]:
                self.dmax = (key, text)

    def result(self) -> dict:
        kind = _pick(self.kinds) if self.count else "text"
        out = {"name": self.name, "type": kind, "count": self.count, "missing": self.missing,
               "distinct": len(self.values), "distinctAtLeast": self.capped}
        if kind == "number" and self.ncount:
            out.update(min=_num(self.nmin), max=_num(self.nmax),
                       mean=_num(self.nsum / self.ncount))
        if kind == "datetime" and self.dmin and self.dmax:  # (set together)
            out.update(min=self.dmin[1], max=self.dmax[1])
        out["top"] = [{"value": _shown(v), "count": c}
                      for v, c in sorted(self.values.items(), key=lambda vc: (-vc[1], vc[0]))
                      [:TOP_VALUES]]
        return out


def _num(value: float | None):
    if value is None or not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else round(value, 6)


def _shown(value: str) -> str:
    return value if len(value) <= MAX_CELL_SHOWN else value[:MAX_CELL_SHOWN - 1] + "…"


def profile_csv(path: Path, *, sample_rows: int = SAMPLE_ROWS) -> dict:
    """One pass over a CSV: ``{rows, columns: [profile], sample, badRows, delimiter,
    encoding}``. Raises ``CsvError`` for what is not a readable CSV."""
    encoding, delimiter = sniff(path)
    rows = bad = 0
    sample: list[dict] = []
    with open(path, encoding=encoding, errors="strict", newline="") as fh:
        reader = _reader(fh, delimiter)
        try:
            header = next(reader, None)
            if not header:
                raise CsvError("the file is empty")
            names = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]
            columns = [_Column(n) for n in names]
            width = len(names)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip() and width > 1):
                    continue
                if len(row) != width:
                    bad += 1
                    continue
                rows += 1
                for column, cell in zip(columns, row):
                    column.add(cell)
                if len(sample) < sample_rows:
                    sample.append({n: _shown(c) for n, c in zip(names, row)})
        except UnicodeDecodeError:
            raise CsvError("the file is not UTF-8 text") from None
        except csv.Error as exc:
            raise CsvError(f"line {reader.line_num}: {exc}") from None
    return {"rows": rows, "badRows": bad, "delimiter": delimiter, "encoding": encoding,
            "columns": [c.result() for c in columns], "sample": sample}


# -- text ---------------------------------------------------------------------------------

def text_excerpt(path: Path, *, chars: int = 6000) -> dict:
    size = lines = 0
    head = b""
    last = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if len(head) < chars * 4:
                head += chunk[:chars * 4 - len(head)]
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if size and last != b"\n":
        lines += 1
    text = head.decode("utf-8", errors="replace")
    return {"size": size, "lines": lines, "excerpt": text[:chars],
            "truncated": len(text) > chars or size > len(head)}


# -- captures -----------------------------------------------------------------------------

class CaptureError(Exception):
    pass


MAX_PACKETS = 2_000_000
LINK_NAMES = {0: "null", 1: "ethernet", 101: "raw", 105: "ieee802_11", 113: "linux_sll",
              127: "ieee802_11_radiotap", 228: "ipv4", 229: "ipv6", 239: "nflog",
              276: "linux_sll2"}
IP_PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6-in-IPv4", 47: "GRE",
                50: "ESP", 51: "AH", 58: "ICMPv6", 89: "OSPF", 132: "SCTP"}
PORT_SERVICES = {20: "FTP-data", 21: "FTP", 22: "SSH", 23: "Telnet", 25: "SMTP", 53: "DNS",
                 67: "DHCP", 68: "DHCP", 80: "HTTP", 110: "POP3", 123: "NTP", 143: "IMAP",
                 161: "SNMP", 443: "HTTPS/TLS", 465: "SMTPS", 587: "SMTP", 853: "DNS-over-TLS",
                 993: "IMAPS", 995: "POP3S", 1900: "SSDP", 3306: "MySQL", 5353: "mDNS",
                 5432: "PostgreSQL", 8080: "HTTP-alt"}
V6_EXTENSIONS = {0, 43, 60, 51}


class _Stats:
    def __init__(self):
        self.packets = self.bytes = 0
        self.first = self.last = None
        self.links: Counter = Counter()
        self.protocols: Counter = Counter()
        self.protocol_bytes: Counter = Counter()
        self.services: Counter = Counter()
        self.endpoints: dict[str, list[int]] = {}
        self.ip_conv: dict[tuple, list[int]] = {}
        self.l4_conv: dict[tuple, list[int]] = {}

    def packet(self, link: int, ts: float | None, data: bytes, orig_len: int) -> None:
        self.packets += 1
        self.bytes += orig_len
        if ts is not None:
            self.first = ts if self.first is None else min(self.first, ts)
            self.last = ts if self.last is None else max(self.last, ts)
        try:
            self._decode(link, data, orig_len)
        except (struct.error, IndexError, ValueError):
            self._count("malformed", orig_len)

    def _count(self, name: str, size: int) -> None:
        self.protocols[name] += 1
        self.protocol_bytes[name] += size

    def _decode(self, link: int, data: bytes, size: int) -> None:
        if link == 1:
            ethertype, offset = struct.unpack_from(">H", data, 12)[0], 14
            while ethertype in (0x8100, 0x88A8, 0x9100):
                ethertype, offset = struct.unpack_from(">H", data, offset + 2)[0], offset + 4
        elif link == 113:
            ethertype, offset = struct.unpack_from(">H", data, 14)[0], 16
        elif link == 276:
            ethertype, offset = struct.unpack_from(">H", data, 0)[0], 20
        elif link in (101, 12, 14):
            version = data[0] >> 4
            ethertype, offset = (0x0800 if version == 4 else 0x86DD if version == 6 else 0), 0
        elif link == 228:
            ethertype, offset = 0x0800, 0
        elif link == 229:
            ethertype, offset = 0x86DD, 0
        elif link == 0:
            family = struct.unpack_from("<I", data, 0)[0]
            if family > 0xFFFF:
                family = struct.unpack_from(">I", data, 0)[0]
            ethertype, offset = (0x0800 if family == 2 else 0x86DD if family in (24, 28, 30)
                                 else 0), 4
        else:
            self._count(LINK_NAMES.get(link, f"link type {link}"), size)
            return
        if ethertype == 0x0800:
            self._ipv4(data, offset, size)
        elif ethertype == 0x86DD:
            self._ipv6(data, offset, size)
        elif ethertype == 0x0806:
            self._count("ARP", size)
        else:
            self._count(f"ethertype 0x{ethertype:04x}", size)

    def _ipv4(self, data: bytes, offset: int, size: int) -> None:
        ihl = (data[offset] & 0x0F) * 4
        proto = data[offset + 9]
        frag = struct.unpack_from(">H", data, offset + 6)[0] & 0x1FFF
        src = str(ipaddress.IPv4Address(data[offset + 12:offset + 16]))
        dst = str(ipaddress.IPv4Address(data[offset + 16:offset + 20]))
        self._count("IPv4", size)
        self._ip(src, dst, proto, data, offset + ihl if frag == 0 else None, size)

    def _ipv6(self, data: bytes, offset: int, size: int) -> None:
        nxt = data[offset + 6]
        src = str(ipaddress.IPv6Address(data[offset + 8:offset + 24]))
        dst = str(ipaddress.IPv6Address(data[offset + 24:offset + 40]))
        at = offset + 40
        later_fragment = False
        while nxt in V6_EXTENSIONS or nxt == 44:
            if nxt == 44:  # fragment header: only the first fragment carries the ports
                first = struct.unpack_from(">H", data, at + 2)[0] >> 3 == 0
                nxt = data[at]
                if not first:
                    later_fragment = True
                    break
                at += 8
                continue
            length = (data[at + 1] + 2) * 4 if nxt == 51 else (data[at + 1] + 1) * 8
            nxt, at = data[at], at + length
        self._count("IPv6", size)
        self._ip(src, dst, nxt, data, None if later_fragment else at, size)

    def _ip(self, src: str, dst: str, proto: int, data: bytes, l4: int | None,
            size: int) -> None:
        for address in {src, dst}:
            entry = self.endpoints.setdefault(address, [0, 0, 0, 0])  # packets, bytes, tx, rx
            entry[0] += 1
            entry[1] += size
        self.endpoints[src][2] += size
        if dst != src:
            self.endpoints[dst][3] += size
        pair = tuple(sorted((src, dst)))
        conv = self.ip_conv.setdefault(pair, [0, 0])
        conv[0] += 1
        conv[1] += size
        name = IP_PROTOCOLS.get(proto, f"IP protocol {proto}")
        self._count(name, size)
        if proto in (6, 17) and l4 is not None and l4 + 4 <= len(data):
            sport, dport = struct.unpack_from(">HH", data, l4)
            ends = tuple(sorted(((src, sport), (dst, dport))))
            key = (name, *ends)
            conv = self.l4_conv.setdefault(key, [0, 0])
            conv[0] += 1
            conv[1] += size
            port = min((p for p in (sport, dport) if p in PORT_SERVICES), default=None)
            if port is not None:
                service = PORT_SERVICES[port]
                if proto == 17 and port == 443:
                    service = "QUIC"
                self.services[f"{service} ({name} {port})"] += 1

    def result(self, links: list[int], truncated: bool, partial: bool) -> dict:
        def when(ts):
            return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(
                timespec="microseconds").replace("+00:00", "Z")

        talkers = sorted(self.endpoints.items(), key=lambda kv: (-kv[1][1], kv[0]))
        ip_conv = sorted(self.ip_conv.items(), key=lambda kv: (-kv[1][1], kv[0]))
        l4_conv = sorted(self.l4_conv.items(), key=lambda kv: (-kv[1][1], kv[0]))
        return {
            "summary": {"packets": self.packets, "bytes": self.bytes,
                        "firstTime": when(self.first), "lastTime": when(self.last),
                        "durationSeconds": (round(self.last - self.first, 6)
                                            if self.first is not None else None),
                        "linkTypes": [LINK_NAMES.get(k, str(k)) for k in links],
                        "truncated": truncated, "partial": partial},
            "protocols": [{"name": n, "packets": c, "bytes": self.protocol_bytes[n]}
                          for n, c in sorted(self.protocols.items(),
                                             key=lambda kv: (-kv[1], kv[0]))],
            "services": [{"name": n, "packets": c} for n, c in self.services.most_common(10)],
            "topTalkers": [{"address": a, "packets": v[0], "bytes": v[1], "txBytes": v[2],
                            "rxBytes": v[3]} for a, v in talkers[:10]],
            "endpointCount": len(self.endpoints),
            "ipConversations": [{"a": k[0], "b": k[1], "packets": v[0], "bytes": v[1]}
                                for k, v in ip_conv[:10]],
            "conversations": [{"protocol": k[0], "a": f"{k[1][0]}:{k[1][1]}",
                               "b": f"{k[2][0]}:{k[2][1]}", "packets": v[0], "bytes": v[1]}
                              for k, v in l4_conv[:10]],
            "conversationCount": len(self.l4_conv),
            "source": "quick scan",
        }


def capture_stats(path: Path, *, max_packets: int = MAX_PACKETS) -> dict:
    """Statistics of a pcap or pcapng file (see the module docstring). Raises
    ``CaptureError`` when it is not a capture; a cut-off last packet sets ``truncated``.
    The file is read record by record by the PCAP domain's own reader (``layout``)."""
    with open(path, "rb") as fh:
        try:
            layout = Layout(fh)
        except LayoutError:
            raise CaptureError("not a pcap or pcapng capture") from None
        stats, partial = _Stats(), False
        readers: dict[int, Callable] = {}
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as records:
            for rec in layout.records():
                if stats.packets >= max_packets:
                    partial = True
                    break
                read = readers.get(rec.section)
                if read is None:
                    read = readers[rec.section] = frame_reader(
                        layout.format, layout.sections[rec.section].preamble)
                frame = read(records[rec.offset:rec.offset + rec.length])
                if frame is not None:
                    stats.packet(frame.link, frame.ts, frame.data, frame.orig_len)
        links = list(dict.fromkeys(link for section in layout.sections
                                   for link in section.link_types))
        return stats.result(links, not layout.complete and not partial, partial)
