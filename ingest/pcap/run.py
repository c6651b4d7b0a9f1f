"""The bulk ingest pass: ``tshark -T fields`` streams one line per frame (with Wireshark's
Protocol and Info columns), its protocol-hierarchy tap prints at the end of the same pass,
and this module turns the lines into packet rows in batches, adds each frame's offset in the
file, and accumulates totals, conversations, I/O and sizes.

A large capture is dissected by several tshark processes at once, one per part of a
flow-partitioned split (``split``), their lines merged back into one tshark's order and
numbering; tshark's dissection is most of an ingest's work, and it is single-threaded.

Blocking by design: the server runs ``IngestRun.run()`` in a worker thread and receives
batches through ``on_batch`` (which may block: that is the back-pressure that keeps memory
bounded while the store catches up; tshark then waits on its full pipe).
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.pcap.flows import Flows
from ingest.pcap.layout import GZIP_MAGIC, Layout, LayoutError, Record
from ingest.pcap.rows import PcapPacket
from ingest.pcap.split import PartReader, PartsLost, Split, merged_rows, split_capture
from ingest.pcap.stats import Totals
from ingest.pcap.taps import TAP_ARGS, TapFormatError, TapReports, merge_hierarchies, parse_reports

TSHARK = os.environ.get("TSHARK", "tshark")
FIELDS = ("frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols",
          "eth.src", "eth.dst", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
          "tcp.srcport", "tcp.dstport", "tcp.stream", "udp.srcport", "udp.dstport", "udp.stream",
          "_ws.col.Source", "_ws.col.Destination", "_ws.col.Protocol", "_ws.col.Info")
N_FIELDS = len(FIELDS)
TCP_STREAM, UDP_STREAM, INFO = (FIELDS.index(f) for f in ("tcp.stream", "udp.stream",
                                                          "_ws.col.Info"))
SPLIT_MIN_BYTES = 16 << 20  # below this, a second tshark's start-up outweighs its help
BATCH = 5000
PROGRESS_EVERY_S = 0.25


def tshark_fields_command(path: str | Path, taps: bool = True) -> list[str]:
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "header=n",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    return cmd + (TAP_ARGS if taps else [])


class CaptureError(Exception):
    """A capture that cannot be (fully) read. ``reason`` is one of: not_a_capture,
    unsupported_link_type, empty, corrupt, tshark_failed."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class Cancelled(Exception):
    pass


@dataclass
class IngestResult:
    totals: Totals
    reports: TapReports
    format: str | None
    link_types: list[list[int]]  # per section, per interface
    preambles: list[bytes]
    indexed: bool  # every frame has its offset
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    flows: Flows = field(default_factory=Flows)


def _nanoseconds(epoch: str) -> int:
    """``frame.time_epoch`` as integer nanoseconds: exact relative times (a float epoch
    keeps only ~0.2 µs)."""
    sec, _, frac = epoch.partition(".")
    return int(sec or 0) * 1_000_000_000 + int((frac + "000000000")[:9])


def _first(text: str) -> int | None:
    """The first occurrence of an integer field (``"53,1024"`` → 53)."""
    head = text.split(",", 1)[0]
    return int(head) if head.isdigit() else None


def decompress_if_gzip(path: Path, workdir: Path) -> Path | None:
    """A gzip-compressed capture, inflated next to ``workdir``; None if not compressed."""
    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC:
            return None
    fd, name = tempfile.mkstemp(prefix="pcap-", suffix=".raw", dir=workdir)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except (OSError, EOFError) as exc:
        Path(name).unlink(missing_ok=True)
        raise CaptureError("corrupt",
                           f"the gzip-compressed file cannot be inflated: {exc}") from exc
    return Path(name)


def classify(stderr: str) -> tuple[str, str] | None:
    """tshark's complaint → (reason, message) for the failures worth naming."""
    text = " ".join(line.strip() for line in stderr.splitlines()
                    if line.strip() and not line.startswith("Running as user"))
    low = text.lower()
    if "isn't a capture file in a format" in low:
        return "not_a_capture", "not a capture file (tshark does not recognise the format)"
    if "unknown or unsupported" in low or "doesn't support" in low:
        detail = text[text.find("("):].strip("() ") if "(" in text else text
        return "unsupported_link_type", f"unsupported link type: {detail}"
    if "cut short in the middle of a packet" in low:
        return "truncated", "the file appears to have been cut short in the middle of a packet"
    if "damaged or corrupt" in low:
        return "corrupt", "the capture file appears to be damaged or corrupt"
    if text:
        return "tshark_failed", text[:300]
    return None


class IngestRun:
    """One pass over one capture file."""

    def __init__(self, path: Path, *, on_batch: Callable[[list[PcapPacket]], None],
                 on_progress: Callable[[dict], None] | None = None,
                 cancel: threading.Event | None = None, skip_through: int = 0,
                 batch_size: int = BATCH, progress_every: float = PROGRESS_EVERY_S,
                 processes: int = 1, split_min_bytes: int = SPLIT_MIN_BYTES,
                 workdir: Path | None = None):
        """``processes`` > 1 lets a capture of at least ``split_min_bytes`` be split into
        that many parts (written under ``workdir``, the capture's directory by default)."""
        self.path = Path(path)
        self.processes = processes
        self.split_min_bytes = split_min_bytes
        self.workdir = Path(workdir) if workdir else self.path.parent
        self.on_batch = on_batch
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.skip_through = skip_through
        self.batch_size = batch_size
        self.progress_every = progress_every

    def run(self) -> IngestResult:
        if self.processes > 1 and self.path.stat().st_size >= self.split_min_bytes:
            with tempfile.TemporaryDirectory(prefix="pcap-split-", dir=self.workdir) as tmp:
                split = split_capture(self.path, Path(tmp), self.processes)
                self._check_cancel()
                if split is not None:
                    return self._run_split(split)
        return self._run_single()

    def _run_single(self) -> IngestResult:
        size = self.path.stat().st_size
        tail: list[str] = []
        with open(self.path, "rb") as fh, tempfile.TemporaryFile() as err:
            layout = _layout(fh)
            records = layout.records() if layout else iter(())
            proc = _tshark(self.path, err)
            try:
                totals, indexed, flows = self._consume(_rows(proc.stdout, tail), records, size,
                                                       layout is not None)
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            stderr = _text(err)
        reports = _reports(tail)
        result = IngestResult(
            totals=totals, reports=reports, format=layout.format if layout else None,
            link_types=[s.link_types for s in layout.sections] if layout else [],
            preambles=[bytes(s.preamble) for s in layout.sections] if layout else [],
            indexed=indexed, flows=flows)
        problem = classify(stderr) if rc != 0 else None
        if problem:
            reason, message = problem
            if reason in ("truncated", "corrupt") and totals.packets:
                result.truncated = True
                result.warnings.append(f"{message}: kept the {totals.packets} complete packets "
                                       f"read before it")
            elif reason == "truncated":
                raise CaptureError("empty", f"{message}, before its first complete packet")
            else:
                raise CaptureError(reason, message)
        elif rc != 0:
            raise CaptureError("tshark_failed", f"tshark exited with status {rc}")
        if totals.packets == 0:
            raise CaptureError("empty", "the capture holds no packets")
        return result

    def _run_split(self, split: Split) -> IngestResult:
        procs, errs, readers = [], [], []
        try:
            for part in split.paths:
                errs.append(tempfile.TemporaryFile())
                procs.append(_tshark(part, errs[-1]))
                readers.append(PartReader(procs[-1].stdout))
            rows = merged_rows(split, readers, N_FIELDS, TCP_STREAM, UDP_STREAM, INFO)
            try:
                totals, _, flows = self._consume(rows, split.records(),
                                                 self.path.stat().st_size, True)
            except PartsLost as exc:
                raise CaptureError("tshark_failed",
                                   f"a parallel dissection went wrong: {exc}") from exc
            rcs = [proc.wait() for proc in procs]
            stderrs = [_text(err) for err in errs]
        except BaseException:
            for proc in procs:
                proc.kill()
            for reader in readers:
                reader.drain()
            for proc in procs:
                proc.wait()
            raise
        finally:
            for err in errs:
                err.close()
        for rc, stderr, reader in zip(rcs, stderrs, readers):
            if reader.error is not None:
                raise CaptureError("tshark_failed", f"reading tshark failed: {reader.error}")
            if rc != 0:  # only complete captures are split: any complaint is a failure
                reason, message = classify(stderr) or ("tshark_failed",
                                                       f"tshark exited with status {rc}")
                raise CaptureError(reason, message)
        parts = [_reports(reader.tail) for reader in readers]
        reports = TapReports(conversations=parts[0].conversations,
                             protocols=merge_hierarchies([p.protocols for p in parts]))
        return IngestResult(totals=totals, reports=reports, format=split.format,
                            link_types=[split.link_types], preambles=[split.preamble],
                            indexed=True, flows=flows)

    def _consume(self, rows, records, size, indexed: bool):
        totals = Totals()
        flows = Flows()
        batch: list[PcapPacket] = []
        started = last_push = time.monotonic()
        offset_now = 0
        for parts in rows:
            (number, ts, length, caplen, protocols, eth_src, eth_dst, ip_src, ip_dst, ip6_src,
             ip6_dst, tsport, tdport, tstream, usport, udport, ustream, src, dst, protocol,
             info) = parts
            number, length, caplen = int(number), int(length or 0), int(caplen or 0)
            ns = _nanoseconds(ts)
            ts = ns / 1e9
            flows.add(ns, length, protocols, eth_src, eth_dst, ip_src, ip_dst, ip6_src,
                      ip6_dst, tsport, tdport, tstream, usport, udport, ustream)
            record: Record | None = next(records, None) if indexed else None
            # A record shorter than its captured bytes means the walk and tshark's frame
            # numbering disagree (a block type not counted): stop indexing from there.
            if indexed and (record is None or record.length < caplen):
                indexed = False
                record = None
            l4: str | None
            stream: int | None
            sport: int | None
            dport: int | None
            if tstream.isdigit() and tsport.isdigit() and tdport.isdigit():  # one TCP layer
                l4, stream, sport, dport = "tcp", int(tstream), int(tsport), int(tdport)
            elif ustream.isdigit() and usport.isdigit() and udport.isdigit():  # one UDP layer
                l4, stream, sport, dport = "udp", int(ustream), int(usport), int(udport)
            elif tstream:
                l4, stream, sport, dport = "tcp", _first(tstream), _first(tsport), _first(tdport)
            elif ustream:
                l4, stream, sport, dport = "udp", _first(ustream), _first(usport), _first(udport)
            else:
                l4 = stream = None
                sport, dport = _first(tsport or usport), _first(tdport or udport)
            totals.add(ts, length, caplen)
            if record is not None:
                offset_now = record.offset + record.length
            if number > self.skip_through:
                batch.append(PcapPacket(number, ts, length, caplen, src, dst, sport, dport, l4,
                                       stream, protocol, info,
                                       record.offset if record else None,
                                       record.length if record else None,
                                       record.section if record else 0))
            if len(batch) >= self.batch_size:
                self._check_cancel()
                self.on_batch(batch)
                batch = []
            if self.on_progress is not None:
                now = time.monotonic()
                if now - last_push >= self.progress_every:
                    last_push = now
                    self._check_cancel()
                    self.on_progress(_progress(totals, offset_now, size, now - started,
                                               indexed))
        if batch:
            self._check_cancel()
            self.on_batch(batch)
        return totals, indexed, flows

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


def _tshark(path: Path, err) -> subprocess.Popen:
    return subprocess.Popen(tshark_fields_command(path), stdout=subprocess.PIPE, stderr=err,
                            stdin=subprocess.DEVNULL, bufsize=1 << 20)


def _rows(stdout, tail: list[str]):
    """tshark's packet lines as field lists; what follows them (the tap reports) goes to
    ``tail``."""
    lines = io.TextIOWrapper(stdout, encoding="utf-8", errors="replace", newline="\n")
    for line in lines:
        if not line[:1].isdigit():
            tail.append(line)
            tail.extend(lines)
            return
        parts = line.rstrip("\n").split("\t", N_FIELDS - 1)
        if len(parts) < N_FIELDS:
            parts += [""] * (N_FIELDS - len(parts))
        yield parts


def _text(err) -> str:
    err.seek(0)
    return err.read().decode("utf-8", "replace")


def _reports(tail: list[str]) -> TapReports:
    try:
        return parse_reports(tail)
    except TapFormatError as exc:
        raise CaptureError("tshark_failed", f"unexpected statistics output: {exc}") from exc


def _layout(fh) -> Layout | None:
    try:
        return Layout(fh)
    except LayoutError:
        return None


def _progress(totals: Totals, offset: int, size: int, elapsed: float, indexed: bool) -> dict:
    rate = totals.packets / elapsed if elapsed > 0 else 0.0
    percent = min(99.9, 100.0 * offset / size) if indexed and size else None
    eta = None
    if percent and elapsed > 0 and offset:
        eta = max(0.0, elapsed * (size - offset) / offset)
    return {"packets": totals.packets, "bytes": totals.bytes, "percent": percent,
            "rate": round(rate, 1), "etaSeconds": None if eta is None else round(eta, 1)}
