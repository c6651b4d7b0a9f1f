"""``pcap:packet`` latency over random frame numbers, this server against the old path.

    python -m bench.pcap_packet                    # espn sample + 150 000 synthesized packets
    python -m bench.pcap_packet --packets 0 --samples 100 --skip-old

Each server is a real ``python -m server`` process on the embedded store; both captures are
uploaded and ingested first (not timed), then ``pcap:packet`` is asked for ``--samples``
distinct random frame numbers of each capture, one at a time (the same numbers for every
server), and p50 / p95 / max of the ack's round trip are printed. The servers:

- ``sessions``: this server as configured by default: a sharkd session per capture (the first
  request opens it: while it loads past DISSECT_LOAD_WAIT_S, answers come from stream context);
- ``stream``: this server with DISSECT_SESSIONS=0: every frame from its stream's context (the
  frame's TCP/UDP stream up to it, cut out and loaded in the scratch sharkd): option (a);
- ``old``: the previous version (pyshark on the frame alone, a fresh tshark per request),
  extracted with ``git archive`` from the commit before ``ingest/pcap/dissect.py`` was removed
  (``--baseline REF`` to choose another) and run with this virtualenv.

The target: p95 <= 150 ms for any frame number on a quiet machine; PASS/FAIL is printed
against it for each server and capture. The machine's load average (``uptime``) is printed
beside each measurement: on a shared machine the figures move with it. The first request of
``sessions`` (the session's load) is also shown on its own, with the sharkd processes' memory.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.pcap_synth import write_capture
from bench.server_process import pct, running_server

ROOT = Path(__file__).resolve().parents[1]
LARGEST_SAMPLE = ROOT / "tests" / "data" / "pcaps" / "sanders-http_espn.pcapng"
TARGET_MS = 150.0


def load() -> str:
    return "load " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def baseline_ref() -> str | None:
    removed = subprocess.run(["git", "log", "-1", "--format=%H", "--diff-filter=D", "--",
                              "ingest/pcap/dissect.py"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
    return f"{removed}^" if removed else None


def extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def children_rss_mb(pid: int) -> tuple[int, float]:
    """(sharkd processes, their summed RSS in MB) among ``pid``'s children."""
    count, kb = 0, 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    with open(f"/proc/{child}/comm") as comm:
                        if comm.read().strip() != "sharkd":
                            continue
                    with open(f"/proc/{child}/status") as status:
                        for line in status:
                            if line.startswith("VmRSS:"):
                                kb += int(line.split()[1])
                    count += 1
    except OSError:
        pass
    return count, kb / 1024


async def measure(name: str, root: Path | None, captures: list[tuple[Path, int]],
                  samples: int, env: dict[str, str]) -> None:
    from tests.client import Client, unique_email
    from tests.files_helpers import upload

    async with running_server(root=root, **env) as (proc, url):
        c = await Client(url).connect()
        await c.register(unique_email("bench"))
        p = await c.ok("project:create", {"name": "bench"})
        await c.ok("project:join", {"id": p["id"]})
        ids = []
        for path, _ in captures:
            status, out = await upload(url, c.tokens["accessToken"], p["id"],
                                       path.read_bytes(), path.name)
            assert status == 201, out
            fid = out["data"]["id"]
            await c.wait_for("pcap:done", lambda d, fid=fid: d["fileId"] == fid, timeout=3600)
            ids.append(fid)
        for (path, total), fid in zip(captures, ids, strict=True):
            numbers = random.Random(7).sample(range(1, total + 1), min(samples, total))
            before = load()
            times, contexts = [], {}
            for number in numbers:
                started = time.perf_counter()
                one = await c.ok("pcap:packet", {"fileId": fid, "number": number}, timeout=120)
                times.append((time.perf_counter() - started) * 1000)
                assert one["number"] == number
                context = one.get("context", "frame alone")
                contexts[context] = contexts.get(context, 0) + 1
            p95 = pct(times, 0.95)
            verdict = "PASS" if p95 <= TARGET_MS else "FAIL"
            print(f"  {name:8} {path.name[:26]:26} {len(times):4} frames  p50 "
                  f"{pct(times, 0.5):6.1f}  p95 {p95:6.1f}  max {max(times):7.1f} ms  "
                  f"{verdict}   first {times[0]:7.1f} ms;  "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(contexts.items()))};  "
                  f"[{before} → {load()}]")
        sharkds, mb = children_rss_mb(proc.pid)
        if sharkds:
            print(f"  {name:8} sharkd processes open: {sharkds}, RSS {mb:.0f} MB in all")
        await c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=150_000,
                    help="synthesized capture's packets (0: only the sample capture)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--baseline", help="git ref of the old path (default: the commit before "
                                       "the pyshark path was removed)")
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--skip-stream", action="store_true")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pcap-packet-"))
    try:
        captures = [(LARGEST_SAMPLE, 0)]
        if args.packets:
            captures.append((write_capture(workdir / "synth.pcap", args.packets), 0))
        captures = [(path, int(subprocess.run(
            ["capinfos", "-T", "-M", "-r", "-c", str(path)], capture_output=True,
            text=True).stdout.split("\t")[1])) for path, _ in captures]
        for path, total in captures:
            print(f"capture {path.name}: {path.stat().st_size / 1e6:.1f} MB, {total} packets")
        print(f"{os.cpu_count()} cores; uptime: {load()}; target p95 <= {TARGET_MS:.0f} ms")
        asyncio.run(measure("sessions", None, captures, args.samples, {}))
        if not args.skip_stream:
            asyncio.run(measure("stream", None, captures, args.samples,
                                {"DISSECT_SESSIONS": "0"}))
        ref = args.baseline or baseline_ref()
        if not args.skip_old:
            if ref is None:
                print("  old      no baseline found (git history needed): skipped")
            else:
                old_root = extract(ref, Path(tempfile.mkdtemp(prefix="old-", dir=workdir)))
                asyncio.run(measure("old", old_root, captures, args.samples, {}))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
