"""Generate large, valid captures quickly (for the ingest benchmark and the tests that need
a capture big enough to interrupt): Ethernet/IPv4 TCP and UDP flows between a few hundred
hosts, written with ``struct`` rather than scapy (a million packets in seconds).

    python -m bench.pcap_synth out.pcap 200000
"""
from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _ip(n: int) -> bytes:
    return bytes([10, (n >> 16) & 255, (n >> 8) & 255, n & 255])


def _ipv4(src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0x4000, 64, proto, 0,
                       src, dst)


def write_capture(path: str | Path, packets: int, *, flows: int = 500, seed: int = 1,
                  start: float = 1_700_000_000.0, step: float = 0.0005,
                  ports: tuple[int, int] = (80, 443)) -> Path:
    """``packets`` frames over ``flows`` conversations: three in four TCP (to ``ports``,
    HTTP and TLS by default, so tshark's heuristics run as on web traffic), the rest UDP
    (to 7777)."""
    rng = random.Random(seed)
    macs = [bytes([0, 0x16, 0x3E, i >> 8 & 255, i & 255, 1]) for i in range(64)]
    specs = []
    for i in range(flows):
        a, b = rng.randrange(1, 200), rng.randrange(200, 400)
        tcp = i % 4 != 0
        specs.append((a, b, rng.randrange(20000, 60000), ports[0] if i % 3 else ports[1], tcp, 1000,
                      1 + i * 7))
    path = Path(path)
    ts = start
    with open(path, "wb", buffering=1 << 20) as out:
        out.write(HEADER)
        for n in range(packets):
            a, b, sport, dport, tcp, seq_a, seq_b = specs[n % flows]
            reply = (n // flows) % 2 == 1
            src, dst = (_ip(b), _ip(a)) if reply else (_ip(a), _ip(b))
            ps, pd = (dport, sport) if reply else (sport, dport)
            body = b"x" * (16 + (n * 37) % 400)
            if tcp:
                l4 = struct.pack("!HHIIBBHHH", ps, pd, seq_b if reply else seq_a,
                                 seq_a if reply else seq_b, 0x50, 0x18, 65535, 0, 0) + body
                i = n % flows
                if reply:
                    specs[i] = (a, b, sport, dport, tcp, seq_a, seq_b + len(body))
                else:
                    specs[i] = (a, b, sport, dport, tcp, seq_a + len(body), seq_b)
                proto = 6
            else:
                ps, pd = (7777, sport) if reply else (sport, 7777)
                l4 = struct.pack("!HHHH", ps, pd, 8 + len(body), 0) + body
                proto = 17
            frame = (macs[(b if reply else a) % 64] + macs[(a if reply else b) % 64] +
                     b"\x08\x00" + _ipv4(src, dst, proto, len(l4)) + l4)
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
            out.write(frame)
            ts += step
    return path


if __name__ == "__main__":
    write_capture(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150_000)
