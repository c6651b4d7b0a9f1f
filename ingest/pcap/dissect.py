"""One packet's full dissection with pyshark, and Follow Stream with tshark.

``Dissector.dissect(capture_bytes)`` takes a tiny capture holding just the wanted frame
(cut out of the file through the offset index, ``ingest.pcap.layout``) and returns the
layer tree: field names, shown values, byte offsets and lengths. It drives pyshark's async
capture machinery over a tshark that reads the capture from its stdin, and keeps one such
process started ahead of time: tshark spends most of its ~0.4 s start-up loading
dissectors, so a warm one answers in milliseconds. Every frame gets a fresh process (no
TCP analysis state leaks from one request into the next). pyshark's own ``XmlLayer``
flattens fields, so a parser subclass keeps PDML's nesting.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from typing import Any

import lxml.etree
from pyshark.capture.capture import Capture
from pyshark.tshark.output_parser.tshark_xml import DEL_BAD_XML_CHARS, TsharkXmlParser

TSHARK = os.environ.get("TSHARK", "tshark")
MAX_NODES = 5000


class DissectError(Exception):
    pass


def _node(el) -> dict | None:
    if el.get("hide") == "yes":
        return None
    name = el.get("name") or ""
    label = el.get("showname") or el.get("show") or name
    node: dict[str, Any] = {"name": name, "label": label}
    if el.get("show") is not None and el.tag == "field":
        node["value"] = el.get("show")
    for key in ("pos", "size"):
        raw = el.get(key)
        if raw is not None and raw.lstrip("-").isdigit():
            node[key] = int(raw)
    children = [c for c in (_node(child) for child in el) if c is not None]
    if children:
        node["children"] = children
    return node


def pdml_tree(xml: bytes) -> list[dict]:
    parser = lxml.etree.XMLParser(huge_tree=True, recover=True, resolve_entities=False)
    text = xml.decode("utf-8", "replace").translate(DEL_BAD_XML_CHARS)
    packet = lxml.etree.fromstring(text.encode("utf-8"), parser)
    layers = []
    for proto in packet.iter("proto"):
        if proto.getparent() is not packet or proto.get("name") == "geninfo":
            continue
        node = _node(proto)
        if node is not None:
            layers.append(node)
    return layers


class TreeParser(TsharkXmlParser):
    """pyshark's PDML stream splitter, producing a nested layer tree per packet."""

    def _parse_single_packet(self, packet):
        return pdml_tree(packet)


class OneFrameCapture(Capture):
    """A pyshark capture whose tshark reads the capture file from stdin (``-r -``)."""

    def get_parameters(self, packet_count=None):
        return super().get_parameters(packet_count=packet_count) + ["-r", "-"]

    def _setup_eventloop(self):
        # pyshark's own version installs a new SafeChildWatcher for the whole process on
        # every capture made in the main thread, orphaning the processes started under the
        # previous one (their wait() never returns). Used only through its async API inside
        # the server's running loop, it needs none of that.
        self.eventloop = asyncio.get_running_loop()

    def _setup_tshark_output_parser(self):
        return TreeParser()

    async def start(self):
        return await self._get_tshark_process(stdin=subprocess.PIPE)

    async def dissect(self, process, capture: bytes, timeout: float) -> list[dict]:
        got: list = []
        process.stdin.write(capture)
        await process.stdin.drain()
        process.stdin.close()
        await asyncio.wait_for(
            self._go_through_packets_from_fd(process.stdout, got.append, packet_count=1),
            timeout)
        if not got:
            raise DissectError(self._last_error_line or "tshark produced no packet")
        return got[0]


class Dissector:
    """One per server instance; ``close()`` on shutdown. Keeps ``spares`` tsharks started
    ahead of time, refilled one at a time after each answer."""

    def __init__(self, timeout: float = 20.0, spares: int = 2):
        self.timeout = timeout
        self.spares = spares
        self._warm: list[tuple[OneFrameCapture, Any]] = []
        self._warming: asyncio.Task | None = None
        self._closed = False

    async def _new(self):
        capture = OneFrameCapture()
        try:
            process = await capture.start()
        except BaseException:
            await capture.close_async()
            raise
        return capture, process

    def _prewarm(self) -> None:
        if self._closed or self._warming is not None or len(self._warm) >= self.spares:
            return

        async def warm():
            try:
                while not self._closed and len(self._warm) < self.spares:
                    made = await self._new()
                    if self._closed:
                        await made[0].close_async()
                        return
                    self._warm.append(made)
            except Exception:
                pass
            finally:
                self._warming = None

        self._warming = asyncio.ensure_future(warm())

    async def _take(self):
        while self._warm:
            capture, process = self._warm.pop(0)
            if process.returncode is None:
                return capture, process
            await capture.close_async()
        if self._warming is not None:  # one is starting: it is nearer than a new one
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._warming)
            if self._warm:
                return self._warm.pop(0)
        return await self._new()

    async def dissect(self, capture_bytes: bytes) -> list[dict]:
        capture, process = await self._take()
        try:
            return await capture.dissect(process, capture_bytes, self.timeout)
        finally:
            with contextlib.suppress(Exception):
                await capture.close_async()  # never leave a tshark behind
            # Spares start after this answer, not beside it: tsharks starting and
            # dissecting at once on a small machine slow each other down.
            self._prewarm()

    def prewarm(self) -> None:
        """Start the spares now so the first request finds one ready."""
        self._prewarm()

    async def close(self) -> None:
        self._closed = True
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(BaseException):
                await self._warming
        for capture, _ in self._warm:
            with contextlib.suppress(Exception):
                await capture.close_async()
        self._warm = []


def renumber(layers: list[dict], number: int) -> list[dict]:
    """The cut-out frame is frame 1 of its tiny capture: give it back its real number."""
    for layer in layers:
        if layer.get("name") == "frame":
            layer["label"] = re.sub(r"^Frame 1:", f"Frame {number}:", layer["label"])
            for field in layer.get("children", []):
                if field.get("name") == "frame.number":
                    field["value"] = str(number)
                    field["label"] = f"Frame Number: {number}"
    return layers


# -- Follow Stream ------------------------------------------------------------------------

def follow(path: str, kind: str, index: int, timeout: float = 120.0) -> dict:
    """``tshark -z follow,<kind>,raw,<index>``: both directions, in order, as bytes."""
    proc = subprocess.run([TSHARK, "-n", "-q", "-r", str(path), "-z",
                           f"follow,{kind},raw,{index}"], capture_output=True, timeout=timeout)
    text = proc.stdout.decode("ascii", "replace")
    nodes: list[str] = []
    segments: list[dict] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("====="):
            if inside:
                break
            inside = True
            continue
        if not inside or line.startswith(("Follow:", "Filter:")):
            continue
        if line.startswith("Node "):
            nodes.append(line.split(":", 1)[1].strip())
            continue
        direction = 1 if line.startswith("\t") else 0
        hexdata = line.strip()
        if not hexdata:
            continue
        try:
            data = bytes.fromhex(hexdata)
        except ValueError:
            continue
        if segments and segments[-1]["dir"] == direction:
            segments[-1]["data"] += data
        else:
            segments.append({"dir": direction, "data": data})
    return {"nodes": nodes, "segments": segments}
