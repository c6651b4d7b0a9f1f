"""What Wireshark shows for a frame, as the reference ``pcap:packet`` is compared with.

``tshark -2 -r FILE -T pdml``: two passes over the whole capture, as Wireshark reads a file
(the first builds reassembly and request/response links, the second prints every frame with
them), with sharkd's default preferences (MAC vendors resolved). The whole file is printed
and split per frame rather than asking ``-Y frame.number==N``: a display filter changes what
the second pass dissects, and then e.g. the "Request URI" of an HTTP response differs from
Wireshark's (frame 121 of ``sanders-http_espn.pcapng``).

PDML nests a reassembly summary (``tcp.segments``) in a ``fake-field-wrapper`` protocol; the
packet detail pane (and sharkd) shows it at the top level, so it is lifted there. Hidden items
are left out, as Wireshark shows them. ``Time delta from previous displayed frame`` depends on
what is displayed, so it is not compared.
"""
from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import lxml.etree

DISPLAYED_DELTA = "Time delta from previous displayed frame"


def _node(el) -> dict | None:
    if el.get("hide") == "yes":
        return None
    node = {"name": el.get("name") or "",
            "label": el.get("showname") or el.get("show") or el.get("name") or ""}
    if el.get("show") is not None and el.tag == "field":
        node["value"] = el.get("show")
    for key in ("pos", "size"):
        if (el.get(key) or "").isdigit():
            node[key] = int(el.get(key))
    children = [c for c in (_node(child) for child in el) if c is not None]
    if children:
        node["children"] = children
    return node


def _layers(packet) -> list[dict]:
    layers: list[dict] = []
    for proto in packet.iterchildren("proto"):
        if proto.get("name") == "geninfo":
            continue
        node = _node(proto)
        if node is None:
            continue
        if node["name"] == "fake-field-wrapper":
            layers += node.get("children", [])
        else:
            layers.append(node)
    return layers


@cache
def wireshark_frames(path: Path) -> dict[int, list[dict]]:
    """Frame number → its layer tree."""
    pdml = subprocess.run(["tshark", "-2", "-r", str(path), "-T", "pdml"],
                          capture_output=True, check=True).stdout
    parser = lxml.etree.XMLParser(huge_tree=True, recover=True)
    out = {}
    for number, raw in enumerate(re.findall(rb"<packet>.*?</packet>", pdml, re.S), 1):
        out[number] = _layers(lxml.etree.fromstring(raw, parser))
    return out


def reassembled_bytes(path: Path, number: int) -> bytes:
    """The TCP payload Wireshark reassembled in frame ``number`` (empty if none)."""
    out = subprocess.run(["tshark", "-2", "-r", str(path), "-Y", f"frame.number=={number}",
                          "-T", "fields", "-e", "tcp.reassembled.data"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return bytes.fromhex(out.replace(":", "").split(",")[0])


def labels(layers: list[dict]) -> list:
    """The tree's shape and labels, what the packet detail pane shows."""
    return [(n["label"], labels(n.get("children", []))) for n in layers
            if not n["label"].startswith(DISPLAYED_DELTA)]


def differences(ours: list[dict], theirs: list[dict], path: str = "") -> list[str]:
    """Where ``pcap:packet``'s tree departs from Wireshark's: a label, the place of a node's
    bytes, or a name (where ours has one: sharkd cannot name every item PDML names)."""
    ours = [n for n in ours if not n["label"].startswith(DISPLAYED_DELTA)]
    theirs = [n for n in theirs if not n["label"].startswith(DISPLAYED_DELTA)]
    if [n["label"] for n in ours] != [n["label"] for n in theirs]:
        return [f"{path}: labels {[n['label'] for n in ours]} != {[n['label'] for n in theirs]}"]
    out = []
    for a, b in zip(ours, theirs, strict=True):
        where = f"{path}/{a['label'][:50]}"
        if b.get("size") and (a.get("pos"), a.get("size")) != (b["pos"], b["size"]):
            out.append(f"{where}: bytes {a.get('pos')}+{a.get('size')} != {b['pos']}+{b['size']}")
        if a["name"] and a["name"] != b["name"]:
            out.append(f"{where}: name {a['name']!r} != {b['name']!r}")
        out += differences(a.get("children", []), b.get("children", []), where)
    return out


def find(layers: list[dict], name: str) -> dict | None:
    for node in layers:
        if node["name"] == name:
            return node
        found = find(node.get("children", []), name)
        if found is not None:
            return found
    return None
