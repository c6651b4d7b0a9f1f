"""The pieces of the ingest pass on their own: the offset index and one-frame cuts, tshark
error classification, the I/O series, and keyset paging over a sorted list."""
from __future__ import annotations

import subprocess

import pytest

from handlers.pcap import page_sorted
from ingest.pcap.layout import Layout, LayoutError, one_frame, packet_bytes, read_record
from ingest.pcap.run import classify
from ingest.pcap.stats import Totals, io_series, smallest_interval
from tests.pcap_files import PCAPS


def frame_hex(path, number: int) -> str:
    out = subprocess.run(["tshark", "-r", str(path), "-c", str(number), "-Y",
                          f"frame.number=={number}", "-x", "--hexdump", "noascii"],
                         capture_output=True, text=True).stdout
    return "".join("".join(line.split()[1:]) for line in out.splitlines() if line.strip())


@pytest.mark.parametrize("name", ["http-simple-get.pcap", "sanders-http_espn.pcapng",
                                  "bigendian.pcap", "tcpdump-tcp-handshake-nano.pcap",
                                  "tcpdump-dhcp-option-108.pcapng"])
def test_one_frame_cut_out_is_the_same_frame(name, tmp_path):
    path = PCAPS / name
    with open(path, "rb") as fh:
        layout = Layout(fh)
        records = list(layout.records())
        assert layout.complete
        count = subprocess.run(["capinfos", "-T", "-M", "-r", "-c", str(path)],
                               capture_output=True, text=True).stdout.split("\t")[1]
        assert len(records) == int(count)
        number = len(records)  # the last frame: nothing before it is read
        r = records[number - 1]
        raw = read_record(fh, r.offset, r.length)
        preamble = bytes(layout.sections[r.section].preamble)
    cut = tmp_path / ("one" + path.suffix)
    cut.write_bytes(one_frame(preamble, raw))
    assert frame_hex(cut, 1) == frame_hex(path, number)
    assert packet_bytes(layout.format, preamble, raw).hex() == frame_hex(path, number)


def test_layout_stops_at_a_cut_record_and_refuses_other_files():
    with open(PCAPS / "truncated-dns-tcp.pcap", "rb") as fh:
        layout = Layout(fh)
        assert len(list(layout.records())) == 7 and not layout.complete
    with open(PCAPS / "not-a-capture.pcap", "rb") as fh, pytest.raises(LayoutError):
        Layout(fh)


def test_tshark_complaints_are_named():
    assert classify('tshark: The file "x" isn\'t a capture file in a format TShark '
                    "understands.")[0] == "not_a_capture"
    reason, message = classify('tshark: The file "x" contains record data that TShark '
                               "doesn't support.\n(pcap: network type 65000 unknown or "
                               "unsupported)")
    assert reason == "unsupported_link_type" and "network type 65000" in message
    assert classify("tshark: The file appears to have been cut short in the middle of a "
                    "packet.")[0] == "truncated"
    assert classify('Running as user "root" and group "root". This could be dangerous.\n') \
        is None


def test_io_series_from_adaptive_buckets():
    t = Totals()
    for i in range(3000):  # 3000 packets over 30 s: base 0.01 s
        t.add(100.0 + i * 0.01, 100, 100)
    io = t.io_view()
    assert io["base"] == 0.01
    per_second = io_series(io, 1.0, 1000)
    assert len(per_second) == 30 and all(x["packets"] == 100 for x in per_second)
    assert sum(x["bytes"] for x in per_second) == 300_000
    with pytest.raises(ValueError):
        io_series(io, 0.015, 1000)
    with pytest.raises(OverflowError):
        io_series(io, 0.01, 100)
    assert smallest_interval(io, 100) == pytest.approx(0.3)
    long = Totals()
    for i in range(100):  # a day long: coarsened
        long.add(i * 900.0, 60, 60)
    assert long.io_view()["base"] >= 10.0
    assert sum(x["packets"] for x in io_series(long.io_view(), 3600, 100)) == 100


def test_keyset_paging_is_stable_under_ties():
    items = [{"id": i, "bytes": (i * 7) % 5} for i in range(23)]
    for descending in (True, False):
        seen, cursor = [], None
        while True:
            page = page_sorted(items, "bytes", descending, cursor, 4)
            seen += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        expected = sorted(items, key=lambda x: (x["bytes"], x["id"]), reverse=descending)
        assert seen == expected
