"""sharkd's answer for one frame → the layer tree of ``pcap:packet``.

sharkd gives each tree item its label (``l``), byte range (``h``), the byte source it lies in
(``ds``: 0 is the frame, others are what dissectors built: reassembled TCP segments, a
decompressed body...), a display filter that selects it (``f``, ``"ip.src == 10.0.0.1"``) and,
for a link to another frame, that frame's number (``fnum``). From the filter come the node's
``name`` and ``value``: the value as Wireshark's display filter writes it, unquoted for strings.
Items the filter language cannot name get ``name: ""``: text items, and items without a value
whose bytes lie in a reassembled source (sharkd has no filter for those: ``tls.record`` over
reassembled data is such a one). A reassembly summary is named after its members
(``tcp.segment`` items under it make it ``tcp.segments``, as PDML names it).

``renumber`` maps frame numbers of a small capture cut out of a large one (stream context)
back to the large one's: the frame's own number, every frame link, the ``#n(len)`` lists of
reassembly summaries and the stream index.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

MAX_NODES = 20_000
MAX_VALUE_CHARS = 4096
MAX_SOURCE_BYTES = 1 << 20
LABEL_BYTES = 239  # Wireshark's ITEM_LABEL_LENGTH less the terminating NUL
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)


@dataclass
class FrameView:
    layers: list[dict]
    data: bytes  # the frame's captured bytes
    sources: list[dict] = field(default_factory=list)  # {name, bytes, length, truncated}
    truncated: bool = False  # nodes were left out past MAX_NODES


def _unquote(text: str) -> str:
    """A display-filter string literal's content (``"a\\"b\\x41"`` → ``a"bA``)."""
    def one(m: re.Match) -> str:
        esc = m.group(1)
        if esc[0] == "x" and len(esc) == 3:
            return chr(int(esc[1:], 16))
        if esc[0] in "01234567":
            return chr(int(esc, 8))
        return _ESCAPES.get(esc, esc)

    return _ESCAPE.sub(one, text[1:-1])


def name_value(item: dict) -> tuple[str, str | None]:
    """(field name, value) from a tree item's display filter."""
    f = item.get("f")
    if not f or f == "text":
        return "", None
    if item.get("t") == "proto":
        return f, None
    name, sep, value = f.partition(" == ")
    if "[" in name or " " in name:  # a slice (``frame[80:16] == …``), not a field
        return "", None
    if not sep:
        return name, None
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = _unquote(value)
    if len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    return name, value


class _Builder:
    def __init__(self, max_nodes: int):
        self.left = max_nodes
        self.truncated = False

    def nodes(self, items: list[dict]) -> list[dict]:
        out = []
        for item in items:
            if self.left <= 0:
                self.truncated = True
                break
            self.left -= 1
            out.append(self.node(item))
        return out

    def node(self, item: dict) -> dict:
        name, value = name_value(item)
        node: dict[str, Any] = {"name": name, "label": item.get("l", "")}
        if value is not None:
            node["value"] = value
        if "h" in item:
            node["pos"], node["size"] = item["h"]
        if item.get("ds"):
            node["source"] = item["ds"] - 1
        if item.get("t") == "framenum" and "fnum" in item:
            node["frame"] = item["fnum"]
        if item.get("n"):
            node["children"] = self.nodes(item["n"])
            if not name:
                node["name"] = _summary_name(node["children"])
        return node


def _summary_name(children: list[dict]) -> str:
    """``tcp.segments`` for a node holding ``tcp.segment`` links (likewise fragments)."""
    for child in children:
        if "frame" in child and child["name"].endswith((".segment", ".fragment")):
            return child["name"] + "s"
    return ""


def frame_view(result: dict, *, max_nodes: int = MAX_NODES,
               max_source_bytes: int = MAX_SOURCE_BYTES) -> FrameView:
    """The layer tree, bytes and extra byte sources of sharkd's ``frame`` result."""
    builder = _Builder(max_nodes)
    layers = builder.nodes(result.get("tree") or [])
    sources = []
    for ds in result.get("ds") or []:
        raw = base64.b64decode(ds.get("bytes") or "")
        sources.append({"name": ds.get("name", ""), "bytes": raw[:max_source_bytes],
                        "length": len(raw), "truncated": len(raw) > max_source_bytes})
    return FrameView(layers, base64.b64decode(result.get("bytes") or ""), sources,
                     builder.truncated)


def walk(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from walk(node.get("children", ()))


_FRAME_LABEL = re.compile(r"^Frame (\d+):")
_MEMBER = re.compile(r"#(\d+)\(")


def renumber(view: FrameView, frames: list[int], streams: dict[str, int] | None = None,
             ) -> FrameView:
    """Give a frame dissected from a cut-out capture the numbers of the original.

    ``frames[i]`` is the original number of the cut's frame ``i + 1``; ``streams`` maps
    ``tcp.stream``/``udp.stream`` to the frame's stream index in the original."""
    def real(n: int) -> int:
        return frames[n - 1] if 1 <= n <= len(frames) else n

    def swap(label: str, old: int, new: int) -> str:
        return re.sub(rf"(?<![\d.]){old}(?![\d.])", str(new), label, count=1)

    streams = streams or {}
    for node in walk(view.layers):
        name = node["name"]
        if name == "frame" and "frame" not in node:
            node["label"] = _FRAME_LABEL.sub(lambda m: f"Frame {real(int(m.group(1)))}:",
                                             node["label"])
        elif name == "frame.number" and node.get("value", "").isdigit():
            old = int(node["value"])
            node["value"] = str(real(old))
            node["label"] = swap(node["label"], old, real(old))
        elif "frame" in node:
            old = node["frame"]
            node["frame"] = real(old)
            if node.get("value", "").isdigit():
                node["value"] = str(real(old))
            node["label"] = swap(node["label"], old, real(old))
        elif name in streams and node.get("value", "").isdigit():
            old = int(node["value"])
            node["value"] = str(streams[name])
            node["label"] = swap(node["label"], old, streams[name])
        if name.endswith((".segments", ".fragments")):
            node["label"] = _MEMBER.sub(lambda m: f"#{real(int(m.group(1)))}(",
                                        node["label"])
        # Larger numbers lengthen a label: cut it where Wireshark cuts its own.
        node["label"] = node["label"].encode()[:LABEL_BYTES].decode("utf-8", "ignore")
    return view

