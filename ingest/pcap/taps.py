"""Wireshark's own tap reports as tshark prints them.

The ingest pass adds ``-z io,phs`` to its field-streaming tshark, so the protocol hierarchy
costs no second pass and is by construction what Wireshark shows. Conversation reports
(``-z conv,<kind>``) are parsed here too, but only to check ``ingest.pcap.flows`` against
them: tshark 4.0 prints large byte counts rounded to kB/MB, so the ingest counts its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

CONV_KINDS = ("eth", "ip", "ipv6", "tcp", "udp")
TAP_ARGS = ["-z", "io,phs"]
TITLES = {"Ethernet Conversations": "eth", "IPv4 Conversations": "ip",
          "IPv6 Conversations": "ipv6", "TCP Conversations": "tcp", "UDP Conversations": "udp"}
_UNITS = {"bytes": 1, "kB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}
_CONV = re.compile(
    r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+"
    r"(?P<f_ba>\d+)\s+(?P<b_ba>\d+) (?P<u1>bytes|kB|MB|GB)\s+"
    r"(?P<f_ab>\d+)\s+(?P<b_ab>\d+) (?P<u2>bytes|kB|MB|GB)\s+"
    r"(?P<frames>\d+)\s+(?P<bytes>\d+) (?P<u3>bytes|kB|MB|GB)\s+"
    r"(?P<start>-?[\d.]+)\s+(?P<duration>-?[\d.]+)\s*$")
_PHS = re.compile(r"^(?P<indent> *)(?P<name>\S+)\s+frames:(?P<frames>\d+)"
                  r"\s+bytes:(?P<bytes>\d+)\s*$")


class TapFormatError(Exception):
    pass


@dataclass(frozen=True)
class Size:
    """A byte count as tshark prints it: exact below 10000, then rounded to kB, MB, ..."""

    value: int
    unit: str

    def matches(self, nbytes: int) -> bool:
        return nbytes // _UNITS[self.unit] == self.value  # tshark truncates


@dataclass
class Conversation:
    kind: str
    a: str
    b: str
    port_a: int | None
    port_b: int | None
    frames_ab: int
    bytes_ab: Size
    frames_ba: int
    bytes_ba: Size
    start: float  # seconds since the first packet
    duration: float


@dataclass
class TapReports:
    conversations: dict[str, list[Conversation]] = field(default_factory=dict)
    protocols: list[dict] = field(default_factory=list)


def _split_port(kind: str, text: str) -> tuple[str, int | None]:
    if kind not in ("tcp", "udp"):
        return text, None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise TapFormatError(f"no port in {text!r}")
    return host, int(port)


def parse_conversation(kind: str, line: str) -> Conversation | None:
    m = _CONV.match(line)
    if m is None:
        return None
    a, port_a = _split_port(kind, m["a"])
    b, port_b = _split_port(kind, m["b"])
    return Conversation(kind, a, b, port_a, port_b, frames_ab=int(m["f_ab"]),
                        bytes_ab=Size(int(m["b_ab"]), m["u2"]), frames_ba=int(m["f_ba"]),
                        bytes_ba=Size(int(m["b_ba"]), m["u1"]), start=float(m["start"]),
                        duration=float(m["duration"]))


def parse_reports(lines) -> TapReports:
    """Parse everything tshark printed after the last packet line."""
    out = TapReports()
    kind: str | None = None
    in_phs = False
    stack: list[tuple[int, list]] = [(-1, out.protocols)]
    for raw in lines:
        line = raw.rstrip("\n")
        title = line.strip()
        if title in TITLES:
            kind, in_phs = TITLES[title], False
            out.conversations.setdefault(kind, [])
            continue
        if title == "Protocol Hierarchy Statistics":
            kind, in_phs = None, True
            continue
        if title.startswith("====") or not title or title.startswith(("Filter:", "|")):
            continue
        if kind is not None:
            conv = parse_conversation(kind, line)
            if conv is not None:
                out.conversations[kind].append(conv)
        elif in_phs:
            m = _PHS.match(line)
            if m is None:
                continue
            depth = len(m["indent"]) // 2
            children: list[dict] = []
            node = {"name": m["name"], "frames": int(m["frames"]), "bytes": int(m["bytes"]),
                    "children": children}
            while stack[-1][0] >= depth:
                stack.pop()
            stack[-1][1].append(node)
            stack.append((depth, children))
    for kind_name in CONV_KINDS:
        out.conversations.setdefault(kind_name, [])
    out.protocols = canonical(_drop_frame_root(out.protocols))
    return out


def canonical(tree: list[dict]) -> list[dict]:
    """Siblings largest first (frames, then bytes, then name): one order however the
    counting was split up (tshark's own follows first appearance)."""
    for node in tree:
        node["children"] = canonical(node["children"])
    return sorted(tree, key=lambda n: (-n["frames"], -n["bytes"], n["name"]))


def merge_hierarchies(trees: list[list[dict]]) -> list[dict]:
    """Protocol hierarchies of disjoint sets of frames, summed node by node."""
    merged: list[dict] = []

    def add(into: list[dict], nodes: list[dict]) -> None:
        for node in nodes:
            mine = next((m for m in into if m["name"] == node["name"]), None)
            if mine is None:
                mine = {"name": node["name"], "frames": 0, "bytes": 0, "children": []}
                into.append(mine)
            mine["frames"] += node["frames"]
            mine["bytes"] += node["bytes"]
            add(mine["children"], node["children"])

    for tree in trees:
        add(merged, tree)
    return canonical(merged)


def _drop_frame_root(tree: list[dict]) -> list[dict]:
    # With a full dissection tree tshark roots the hierarchy at "frame"; with -q it does
    # not. Every packet is a frame, so the root says nothing: drop it for one shape.
    if len(tree) == 1 and tree[0]["name"] == "frame":
        return tree[0]["children"]
    return tree
