"""Handshake storm (issue 17, item 5): how slow does ``/health`` get while thousands of
sockets connect and authenticate at once?

    python -m bench.handshake_storm              # 2,000 sockets at once, 3 storms
    python -m bench.handshake_storm --quick      # 300 sockets, 1 storm

One instance (``python -m server``, embedded store) started by this script. --users accounts
are registered over REST first; then --sockets sockets (spread over the users, signed in on
connect with ``auth.token``, as a page reload storm after a deploy would) connect all at once
from --procs client processes (bench/capacity.py's raw Socket.IO clients), while this process
asks ``GET /health`` every --probe-ms and records how long each answer takes, and a socket
connected before the storm calls ``ping`` as often (what a user already online feels).

Reported per storm: the time until every socket was connected; the server's CPU time per
handshake (from /proc: independent of the machine's other load); the admission figures from
/metrics (most handshakes in progress at once, connections turned away with 503); how long the
server took, once the storm's clients left, until it held none of their sockets (the next storm
starts only then); /health's p50/p99/max and the online user's ``ping`` p50/p99/max during the
storm; /health in the --after-s seconds after. Then /health over all the time outside the
storms: the teardowns, and the full garbage collections held off during the storms
(server/gc_pacing.py) — they run then. Target: /health max <= 200 ms during each storm
(PASS/FAIL). The load average is printed with every storm: the figures mean little on a
machine busy with other work. ``--root`` runs the server from another checkout (an earlier
version, for a before/after). With --py-spy DIR the server is sampled throughout.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.capacity import ClientPool, RawSocket, raise_fd_limit  # noqa: E402
from bench.server_process import running_server  # noqa: E402
from tests.client import unique_email  # noqa: E402
from tests.metrics_helpers import scrape, value  # noqa: E402

TARGET_MS = 200.0


async def register(url: str, users: int) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> dict:
            async with gate, http.post(url + "/api/auth/register", json={
                    "email": unique_email(f"storm{i}"), "password": "correct horse"}) as resp:
                body = await resp.json()
                if not body.get("ok"):
                    raise RuntimeError(f"register failed: {body}")
                return {"token": body["data"]["tokens"]["accessToken"]}

        return await asyncio.gather(*(one(i) for i in range(users)))


Samples = list[tuple[float, float]]  # (when the answer came, perf_counter; ms it took)


async def probe(url: str, every: float, stop: asyncio.Event) -> Samples:
    """/health answer times until ``stop``."""
    out: Samples = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            async with http.get(url + "/health") as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/health answered {resp.status}")
            t1 = time.perf_counter()
            out.append((t1, (t1 - t0) * 1000))
            await asyncio.sleep(every)
    return out


async def pings(online: RawSocket, every: float, stop: asyncio.Event) -> Samples:
    """An already connected user's ``ping`` round trips until ``stop``."""
    out: Samples = []
    while not stop.is_set():
        t0 = time.perf_counter()
        await online.ok("ping", {})
        t1 = time.perf_counter()
        out.append((t1, (t1 - t0) * 1000))
        await asyncio.sleep(every)
    return out


def quantile(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def window(samples: Samples, start: float, end: float) -> list[float]:
    return [ms for t, ms in samples if start <= t <= end]


def spread(values: list[float]) -> str:
    if not values:
        return "no answers"
    return (f"p50 {statistics.median(values):.1f} ms, p99 {quantile(values, 0.99):.1f} ms, "
            f"max {max(values):.1f} ms ({len(values)} answers)")


async def sockets_held(url: str) -> float:
    return value(await scrape(url), "collab_sockets")


class Probes:
    """/health and the online user's ``ping``, asked from before the first storm until
    after the last one's sockets are gone: the storms and everything between them."""

    def __init__(self, url: str, online: RawSocket, every: float):
        self.stop = asyncio.Event()
        self.health = asyncio.create_task(probe(url, every, self.stop))
        self.pings = asyncio.create_task(pings(online, every, self.stop))

    async def results(self) -> tuple[Samples, Samples]:
        self.stop.set()
        return await self.health, await self.pings


async def storm(url: str, pid: int, auths: list[dict], args) -> tuple[float, float, str]:
    """One storm: (when it started, when every socket was connected, what to print)."""
    pool = ClientPool(url, args.procs)
    await pool.start()
    before = await scrape(url)
    try:
        await asyncio.sleep(0.3)  # a few quiet answers first
        specs = [(auths[i % len(auths)], []) for i in range(args.sockets)]
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        connected = await pool.connect(specs, concurrency=args.sockets)
        t1, cpu1 = time.perf_counter(), cpu_seconds(pid)
        if connected != args.sockets:
            raise RuntimeError(f"{connected} of {args.sockets} sockets connected")
        await asyncio.sleep(args.after_s)
        after = await scrape(url)
    finally:
        await pool.close()
    # Until the server has closed every socket of this storm (all but the online one).
    t2 = time.perf_counter()
    while await sockets_held(url) > 1:
        await asyncio.sleep(0.05)
    settled = time.perf_counter() - t2
    refused = value(after, "collab_handshakes_refused_total") - value(
        before, "collab_handshakes_refused_total")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    peak = value(after, "collab_handshakes", None, state="peak") \
        if ("collab_handshakes", frozenset({("state", "peak")})) in after else None
    admitted = "no admission control" if peak is None else \
        f"handshakes at once at most: {peak:.0f}, refused (503): {refused:.0f}"
    return t0, t1, (
        f"all connected in {(t1 - t0) * 1000:,.0f} ms, server CPU "
        f"{(cpu1 - cpu0) / args.sockets * 1000:.2f} ms per handshake (load average {load})\n"
        f"    {admitted}; the server closed the storm's sockets {settled * 1000:,.0f} ms "
        f"after the clients left")


async def amain(args) -> int:
    raise_fd_limit()
    print(f"handshake storm: {args.sockets:,} sockets signing in at once ({args.users} users, "
          f"{args.procs} client processes), /health asked every {args.probe_ms} ms")
    passed = True
    env = {"LOG_LEVEL": "WARNING", "MAX_SOCKETS_PER_USER": "1000000"}
    if args.concurrency:
        env["HANDSHAKE_CONCURRENCY"] = str(args.concurrency)
    async with running_server(root=args.root, **env) as (proc, url):
        auths = await register(url, args.users)
        online = RawSocket()
        session = aiohttp.ClientSession()
        await online.connect(session, url, auths[0])
        spy = None
        if args.py_spy:
            import subprocess
            Path(args.py_spy).mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                    "--pid", str(proc.pid), "--rate", "250", "--nonblocking",
                                    "--format", "raw", "--output",
                                    str(Path(args.py_spy) / "storm.folded")])
            await asyncio.sleep(0.5)
        probes = Probes(url, online, args.probe_ms / 1000)
        storms = []
        try:
            for _ in range(args.storms):
                storms.append(await storm(url, proc.pid, auths, args))
        finally:
            answers, rtts = await probes.results()
            if spy is not None:
                import signal
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            await online.close()
            await session.close()
    for n, (t0, t1, summary) in enumerate(storms, 1):
        during = window(answers, t0, t1)
        ok = bool(during) and max(during) <= TARGET_MS
        passed &= ok
        print(f"  storm {n}: {summary}\n"
              f"    /health during: {spread(during)}  {'PASS' if ok else 'FAIL'} (max <= "
              f"{TARGET_MS:.0f} ms)\n"
              f"    ping of a user online, during: {spread(window(rtts, t0, t1))}\n"
              f"    /health in the {args.after_s:g} s after: "
              f"{spread(window(answers, t1 + 1e-9, t1 + args.after_s))}")
    outside = [ms for t, ms in answers if not any(t0 <= t <= t1 for t0, t1, _ in storms)]
    print(f"  /health outside the storms (before, after, while their sockets closed): "
          f"{spread(outside)}")
    print(f"\noverall: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--storms", type=int, default=3)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--probe-ms", type=float, default=20.0)
    p.add_argument("--after-s", type=float, default=1.0,
                   help="keep asking /health this long after the storm")
    p.add_argument("--root", type=Path,
                   help="run the server from this checkout (e.g. an earlier version)")
    p.add_argument("--concurrency", type=int,
                   help="the server's HANDSHAKE_CONCURRENCY (default: its own default)")
    p.add_argument("--py-spy", metavar="DIR")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.sockets, args.users, args.storms = 300, 30, 1
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
