"""Handshake storm (issue 17, item 5): how slow does ``/health`` get while thousands of
sockets connect and authenticate at once?

    python -m bench.handshake_storm              # 2,000 sockets at once, 3 storms
    python -m bench.handshake_storm --quick      # 300 sockets, 1 storm

One instance (``python -m server``, embedded store) started by this script. --users accounts
are registered over REST first; then --sockets sockets (spread over the users, signed in on
connect with ``auth.token``, as a page reload storm after a deploy would) connect all at once
from --procs client processes (bench/capacity.py's raw Socket.IO clients), while this process
asks ``GET /health`` every --probe-ms and records how long each answer takes. Reported per
storm: the time until every socket was connected, and /health's p50/p99/max meanwhile.
Target: /health max <= 200 ms. With --py-spy DIR the server is sampled during the storms.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.capacity import ClientPool, raise_fd_limit  # noqa: E402
from bench.server_process import running_server  # noqa: E402
from tests.client import unique_email  # noqa: E402

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


async def probe(url: str, every: float, stop: asyncio.Event) -> list[float]:
    """/health answer times (ms) until ``stop``."""
    out: list[float] = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            async with http.get(url + "/health") as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"/health answered {resp.status}")
            out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(every)
    return out


def quantile(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


async def storm(url: str, auths: list[dict], args) -> tuple[float, list[float]]:
    pool = ClientPool(url, args.procs)
    await pool.start()
    stop = asyncio.Event()
    probing = asyncio.create_task(probe(url, args.probe_ms / 1000, stop))
    try:
        await asyncio.sleep(0.3)  # a few quiet answers first
        specs = [(auths[i % len(auths)], []) for i in range(args.sockets)]
        t0 = time.perf_counter()
        connected = await pool.connect(specs, concurrency=args.sockets)
        took = time.perf_counter() - t0
        if connected != args.sockets:
            raise RuntimeError(f"{connected} of {args.sockets} sockets connected")
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        answers = await probing
        await pool.close()
    return took, answers


async def amain(args) -> int:
    raise_fd_limit()
    print(f"handshake storm: {args.sockets:,} sockets signing in at once ({args.users} users, "
          f"{args.procs} client processes), /health asked every {args.probe_ms} ms")
    passed = True
    async with running_server(LOG_LEVEL="WARNING", MAX_SOCKETS_PER_USER="1000000") as (proc, url):
        auths = await register(url, args.users)
        spy = None
        if args.py_spy:
            import subprocess
            Path(args.py_spy).mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                    "--pid", str(proc.pid), "--rate", "250", "--nonblocking",
                                    "--format", "raw", "--output",
                                    str(Path(args.py_spy) / "storm.folded")])
            await asyncio.sleep(0.5)
        try:
            for n in range(args.storms):
                took, answers = await storm(url, auths, args)
                worst = max(answers)
                ok = worst <= TARGET_MS
                passed &= ok
                print(f"  storm {n + 1}: all connected in {took * 1000:,.0f} ms; /health "
                      f"p50 {statistics.median(answers):.1f} ms, p99 "
                      f"{quantile(answers, 0.99):.1f} ms, max {worst:.1f} ms over "
                      f"{len(answers)} answers  {'PASS' if ok else 'FAIL'} (max <= "
                      f"{TARGET_MS:.0f} ms)")
        finally:
            if spy is not None:
                import signal
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
    print(f"\noverall: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sockets", type=int, default=2000)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--storms", type=int, default=3)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--probe-ms", type=float, default=20.0)
    p.add_argument("--py-spy", metavar="DIR")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.sockets, args.users, args.storms = 300, 30, 1
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
