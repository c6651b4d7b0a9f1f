"""The ingest pass against Wireshark's own tools on every shared capture: conversations
like ``tshark -z conv,<kind>``, the protocol hierarchy like ``-z io,phs``, totals and times
like ``capinfos``, sizes like ``-z plen,tree``, I/O like ``-z io,stat``."""
from __future__ import annotations

import re
import subprocess

import pytest

from ingest.pcap.flows import KINDS
from ingest.pcap.run import IngestRun
from ingest.pcap.stats import io_series
from ingest.pcap.taps import parse_reports
from tests.pcap_files import GOOD, PCAPS

_RESULTS: dict = {}
_TRUTH: dict = {}


def ingest(name: str):
    if name not in _RESULTS:
        rows = []
        result = IngestRun(PCAPS / name, on_batch=rows.extend).run()
        _RESULTS[name] = (result, rows)
    return _RESULTS[name]


def tshark_report(name: str, *taps: str) -> str:
    """``tshark -z <tap>`` with a field output, so tshark builds the whole protocol tree
    as Wireshark's GUI does (with ``-q`` alone it skips protocol items no filter asks for,
    e.g. ``nflog`` or ``tcp.segments``, and the hierarchy loses those nodes)."""
    args = ["tshark", "-n", "-r", str(PCAPS / name), "-T", "fields", "-e", "frame.number"]
    for tap in taps:
        args += ["-z", tap]
    return subprocess.run(args, capture_output=True, text=True).stdout


def truth(name: str):
    """Every tap in one tshark run per capture."""
    if name not in _TRUTH:
        taps = [f"conv,{k}" for k in KINDS] + ["io,phs"]
        _TRUTH[name] = parse_reports(tshark_report(name, *taps).splitlines())
    return _TRUTH[name]


def conv_key(kind: str, a, pa, b, pb, start: float):
    return (a, pa, b, pb, f"{start:.6f}")


@pytest.mark.parametrize("name", GOOD)
def test_conversations_equal_tshark_conv(name):
    """Addresses, ports, frames each way, start and duration as tshark prints them; bytes
    exactly where tshark prints bytes, to its rounding where it prints kB."""
    result, _ = ingest(name)
    for kind in KINDS:
        expected = {conv_key(kind, c.a, c.port_a, c.b, c.port_b, c.start): c
                    for c in truth(name).conversations[kind]}
        ours = {conv_key(kind, c["a"], c.get("portA"), c["b"], c.get("portB"), c["start"]): c
                for c in result.flows.conversations(kind)}
        assert sorted(ours) == sorted(expected), (name, kind)
        for key, t in expected.items():
            c = ours[key]
            assert (c["framesAB"], c["framesBA"]) == (t.frames_ab, t.frames_ba), (name, key)
            assert t.bytes_ab.matches(c["bytesAB"]) and t.bytes_ba.matches(c["bytesBA"]), \
                (name, key, c, t)
            assert f'{c["duration"]:.4f}' == f"{t.duration:.4f}", (name, key)


@pytest.mark.parametrize("name", GOOD)
def test_protocol_hierarchy_equals_tshark_phs(name):
    result, _ = ingest(name)
    assert result.reports.protocols == truth(name).protocols
    assert result.reports.protocols, name


@pytest.mark.parametrize("name", GOOD)
def test_totals_equal_capinfos(name):
    result, rows = ingest(name)
    out = subprocess.run(["capinfos", "-T", "-M", "-r", "-c", "-d", "-S", "-a", "-e",
                          str(PCAPS / name)], capture_output=True, text=True).stdout
    packets, data_size, first, last = out.strip().split("\t")[1:5]
    t = result.totals
    assert (t.packets, t.bytes) == (int(packets), int(data_size))
    assert len(rows) == t.packets and [r.number for r in rows] == list(range(1, t.packets + 1))
    # Epoch floats keep ~0.2 µs: compare to a microsecond.
    assert abs(t.earliest - float(first)) < 1e-6 and abs(t.latest - float(last)) < 1e-6


SIZE_ROW = re.compile(r"^ (\d+)(?:-\d+| and greater)\s+(\d+)\s")
IO_ROW = re.compile(r"^\|\s*([\d.]+)\s*<>\s*(?:[\d.]+|Dur)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|")


@pytest.mark.parametrize("name", ["sanders-http_espn.pcapng", "v6-http.pcap", "gre-sample.pcap"])
def test_sizes_and_io_equal_tshark(name):
    result, _ = ingest(name)
    out = subprocess.run(["tshark", "-n", "-q", "-r", str(PCAPS / name), "-z", "plen,tree",
                          "-z", "io,stat,1"], capture_output=True, text=True).stdout
    sizes = {int(m[1]): int(m[2]) for m in map(SIZE_ROW.match, out.splitlines()) if m}
    ours = {b["min"]: b["packets"] for b in result.totals.sizes_view()["buckets"]}
    assert ours == sizes
    truth = [(float(m[1]), int(m[2]), int(m[3])) for m in map(IO_ROW.match, out.splitlines())
             if m]
    series = io_series(result.totals.io_view(), 1.0, 100_000)
    assert [(float(x["t"]), x["packets"], x["bytes"]) for x in series] == truth
