"""Statistics accumulated packet by packet during the ingest pass: totals and times (like
``capinfos``), I/O over time at an adaptive base resolution, and the packet length
histogram with Wireshark's ``plen`` buckets."""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

#: Wireshark's "Packet Lengths" buckets (``-z plen,tree``): lower bounds, last is open.
SIZE_BUCKETS = (0, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120)
#: I/O base resolutions, finest first; the base coarsens as the capture grows longer.
IO_BASES = (0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 86400.0)
IO_MAX_BUCKETS = 20_000


@dataclass
class Totals:
    packets: int = 0
    bytes: int = 0  # original lengths (capinfos "Data size")
    captured: int = 0
    first: float | None = None
    last: float | None = None
    earliest: float | None = None
    latest: float | None = None
    sizes: list[int] = field(default_factory=lambda: [0] * len(SIZE_BUCKETS))
    size_bytes: list[int] = field(default_factory=lambda: [0] * len(SIZE_BUCKETS))
    min_len: int | None = None
    max_len: int = 0
    io_base_index: int = 0
    io: dict[int, list[int]] = field(default_factory=dict)
    ordered: bool = True

    def add(self, ts: float, length: int, caplen: int) -> None:
        self.packets += 1
        self.bytes += length
        self.captured += caplen
        if self.first is None:
            self.first = self.earliest = self.latest = ts
        if self.last is not None and ts < self.last:
            self.ordered = False
        self.last = ts
        # (earliest and latest were set with first, above)
        if self.earliest is None or ts < self.earliest:
            self.earliest = ts
        elif self.latest is None or ts > self.latest:
            self.latest = ts
        i = bisect_right(SIZE_BUCKETS, length) - 1
        self.sizes[i] += 1
        self.size_bytes[i] += length
        self.min_len = length if self.min_len is None else min(self.min_len, length)
        self.max_len = max(self.max_len, length)
        rel = max(0.0, ts - self.first)
        key = int(rel / IO_BASES[self.io_base_index] + 1e-9)
        while key >= IO_MAX_BUCKETS and self.io_base_index < len(IO_BASES) - 1:
            self._coarsen()
            key = int(rel / IO_BASES[self.io_base_index] + 1e-9)
        slot = self.io.get(key)
        if slot is None:
            self.io[key] = [1, length]
        else:
            slot[0] += 1
            slot[1] += length

    def _coarsen(self) -> None:
        old, new = IO_BASES[self.io_base_index], IO_BASES[self.io_base_index + 1]
        self.io_base_index += 1
        merged: dict[int, list[int]] = {}
        for key, (packets, nbytes) in self.io.items():
            k = int(key * old / new + 1e-9)
            slot = merged.setdefault(k, [0, 0])
            slot[0] += packets
            slot[1] += nbytes
        self.io = merged

    # -- results ----------------------------------------------------------------------

    def io_view(self) -> dict:
        return {"base": IO_BASES[self.io_base_index], "start": self.first,
                "buckets": sorted([k, p, b] for k, (p, b) in self.io.items())}

    def sizes_view(self) -> dict:
        buckets = []
        for i, low in enumerate(SIZE_BUCKETS):
            high = SIZE_BUCKETS[i + 1] - 1 if i + 1 < len(SIZE_BUCKETS) else None
            buckets.append({"min": low, "max": high, "packets": self.sizes[i],
                            "bytes": self.size_bytes[i]})
        return {"buckets": buckets, "minLength": self.min_len, "maxLength": self.max_len,
                "averageLength": (self.bytes / self.packets) if self.packets else None}


def io_series(io: dict, interval: float, max_points: int) -> list[dict]:
    """Dense packets/bytes per ``interval`` from the stored base buckets."""
    base = io["base"]
    ratio = interval / base
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
        raise ValueError(f"interval must be a multiple of {base:g} s")
    step = max(1, round(ratio))
    buckets = io["buckets"]
    count = (buckets[-1][0] // step + 1) if buckets else 0
    if count > max_points:
        raise OverflowError(count)
    packets = [0] * count
    nbytes = [0] * count
    for key, p, b in buckets:
        packets[key // step] += p
        nbytes[key // step] += b
    return [{"t": round(i * step * base, 9), "packets": packets[i], "bytes": nbytes[i]}
            for i in range(count)]


def smallest_interval(io: dict, max_points: int) -> float:
    """The finest interval whose series stays within ``max_points``."""
    base = io["base"]
    last = io["buckets"][-1][0] if io["buckets"] else 0
    step = max(1, math.ceil((last + 1) / max_points))
    return base * step
