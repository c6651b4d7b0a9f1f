"""The shared sample captures (../shared/data/pcaps, see its README) by what they show."""
from __future__ import annotations

from pathlib import Path

PCAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pcaps"
BAD = {"not-a-capture.pcap", "tcpdump-empty.pcapng", "truncated-dns-tcp.pcap"}
GOOD = sorted(p.name for p in PCAPS.glob("*.pcap*") if p.name not in BAD)
