"""Follow Stream with tshark: one TCP/UDP stream's payload in both directions, in order."""
from __future__ import annotations

import os
import subprocess

TSHARK = os.environ.get("TSHARK", "tshark")


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
