"""The flow-partitioned parallel ingest (ingest/pcap/split.py) against one tshark: every
packet row (numbers, stream indices, Protocol and Info columns, offsets), conversations,
totals and the protocol hierarchy must be identical, over the shared captures, a merge of
many of them (many hosts, ICMP echo and errors, fragments, tunnels, VLANs, DNS, HTTP, TLS
interleaved) and a generated capture with hundreds of streams."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from bench.pcap_synth import write_capture
from ingest.pcap.run import IngestRun
from ingest.pcap.split import split_capture
from tests.pcap_files import GOOD, PCAPS

ETHERNET = ["http-simple-get.pcap", "dns-udp.pcap", "dns-tcp.pcap", "gre-sample.pcap",
            "ipv6-in-ipv4.pcap", "smtp-starttls.pcap", "ftp.pcap", "twovlan.pcap",
            "tcpdump-icmpv6.pcap", "v6-http.pcap", "tls13.pcap", "quic33-wireshark.pcap",
            "sanders-http_espn.pcapng", "sanders-icmp_traceroute.pcapng",
            "sanders-ipv6_fragments.pcapng", "sanders-tcp_dupack.pcapng",
            "sanders-http_ip4and6.pcapng", "tcpdump-802.1ad_QinQ.pcap"]
NOT_SPLIT = {"80211http.pcap": "radiotap link type", "nflog.pcap": "nflog link type",
             "tcpdump-dhcp-option-108.pcapng": "blocks besides packets"}


def ingest(path: Path, processes: int):
    rows = []
    # The parts go to a scratch directory, never next to the repo's sample captures.
    with tempfile.TemporaryDirectory() as work:
        result = IngestRun(path, on_batch=rows.extend, processes=processes, split_min_bytes=0,
                           batch_size=500, workdir=Path(work)).run()
    return result, rows


def flows(result) -> dict:
    return {kind: sorted((c.a, c.b, c.pa, c.pb, c.f_ab, c.b_ab, c.f_ba, c.b_ba, c.first,
                          c.last, c.stream) for c in table.values())
            for kind, table in result.flows.tables.items()}


def assert_same(path: Path, processes: int, tmp_path: Path, min_parts: int = 1) -> None:
    split = split_capture(path, tmp_path, processes)
    assert split is not None, path.name
    used = {part for part in split.owner}
    assert len(used) >= min_parts, (path.name, used)
    one, one_rows = ingest(path, 1)
    many, many_rows = ingest(path, processes)
    assert len(many_rows) == len(one_rows) == one.totals.packets
    for a, b in zip(one_rows, many_rows):
        assert a == b
    assert many.reports.protocols == one.reports.protocols
    assert flows(many) == flows(one)
    assert (many.totals.packets, many.totals.bytes, many.totals.first, many.totals.last) == \
        (one.totals.packets, one.totals.bytes, one.totals.first, one.totals.last)
    assert many.indexed and many.format == one.format and many.preambles == one.preambles


@pytest.mark.parametrize("name", [n for n in GOOD if n not in NOT_SPLIT])
def test_each_shared_capture_splits_to_the_same_result(name, tmp_path):
    assert_same(PCAPS / name, 2, tmp_path)


@pytest.mark.parametrize("name", sorted(NOT_SPLIT))
def test_captures_a_split_could_change_take_the_single_pass(name, tmp_path):
    assert split_capture(PCAPS / name, tmp_path, 2) is None


def test_bad_captures_are_never_split(tmp_path):
    for name in ("not-a-capture.pcap", "tcpdump-empty.pcapng", "truncated-dns-tcp.pcap"):
        assert split_capture(PCAPS / name, tmp_path, 2) is None, name
    # Two sections (two pcapng files end to end): their interfaces differ, so no split.
    two = tmp_path / "two-sections.pcapng"
    two.write_bytes((PCAPS / "sanders-tcp_dupack.pcapng").read_bytes() +
                    (PCAPS / "sanders-http_ip4and6.pcapng").read_bytes())
    assert split_capture(two, tmp_path, 2) is None


@pytest.mark.parametrize("processes", [2, 3])
def test_a_merge_of_many_captures_splits_to_the_same_result(processes, tmp_path):
    merged = tmp_path / "merged.pcapng"
    subprocess.run(["mergecap", "-w", str(merged), *(str(PCAPS / n) for n in ETHERNET)],
                   check=True, capture_output=True)
    parts = tmp_path / "parts"
    parts.mkdir()
    assert_same(merged, processes, parts, min_parts=processes)


def test_a_generated_capture_with_hundreds_of_streams(tmp_path):
    path = write_capture(tmp_path / "synth.pcap", 12_000, flows=300)
    parts = tmp_path / "parts"
    parts.mkdir()
    assert_same(path, 2, parts, min_parts=2)


def _tshark_children() -> set[int]:
    import os

    me = str(os.getpid())
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if fields[1] == me and name.startswith("tshark"):
            out.add(int(entry.name))
    return out


def test_cancelling_a_split_ingest_stops_every_tshark_and_leaves_no_parts(tmp_path):
    import threading

    from ingest.pcap.run import Cancelled

    path = write_capture(tmp_path / "synth.pcap", 30_000, flows=200)
    work = tmp_path / "work"
    work.mkdir()
    cancel = threading.Event()
    batches = []

    def on_batch(rows):
        batches.append(len(rows))
        assert len(_tshark_children()) == 2  # both parts are being dissected
        cancel.set()

    with pytest.raises(Cancelled):
        IngestRun(path, on_batch=on_batch, cancel=cancel, processes=2, split_min_bytes=0,
                  batch_size=1000, workdir=work).run()
    assert batches == [1000]
    assert _tshark_children() == set()
    assert list(work.iterdir()) == []  # the parts' directory is gone
