"""Row-lock benchmark (issue 4).

    python -m bench.locks            # everything, both scenarios
    python -m bench.locks --quick    # a tiny run

1. Lock latency: one client calls ``row:lock``; another client (on the other instance in
   the Redis scenario) times the arrival of ``row:locked``. p50/p99 over --iterations.
   Targets: p99 <= 10 ms on one instance, <= 15 ms across instances (issue 17, quiet).
2. Contention: --racers clients (spread over the instances) race for one row, round after
   round; the winner unlocks. Prints grants/s and counts double grants (target: zero).
3. Row-update fan-out: ``row:update`` pushed as ``row:updated`` to --clients room members,
   against the bare python-socketio server broadcasting the same payload
   (bench/bare_server.py, the floor of bench/fanout.py). Target: >= 80 % of its
   deliveries/s. Uses fanout.py's machinery, so the two are measured the same way.

Every server is started by this script as a child process and torn down at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import fanout  # noqa: E402
from bench.fanout import RowUpdateRun, Run, _quantile, alternate, deploy  # noqa: E402
from tests.client import Client, unique_email  # noqa: E402

LOCK_ENV = {"BCRYPT_ROUNDS": "4", "LOG_LEVEL": "INFO"}


async def _team(urls: list[str], n: int, name: str):
    owner = await Client(urls[0], "owner").connect()
    await owner.register(unique_email(f"{name}-owner"))
    project = await owner.ok("project:create", {"name": name})
    members = []
    for i in range(n):
        c = await Client(urls[(i + 1) % len(urls)], f"m{i}").connect()
        await c.register(unique_email(name))
        await owner.ok("project:member:add", {"id": project["id"], "email": c.user["email"],
                                              "role": "editor"})
        await c.ok("project:join", {"id": project["id"]})
        members.append(c)
    await owner.ok("project:join", {"id": project["id"]})
    table = await owner.ok("table:create", {"projectId": project["id"], "name": "t", "columns": [
        {"name": "t", "type": "number"}, {"name": "p", "type": "text"},
        {"name": "s", "type": "number"}, {"name": "x", "type": "text"}]})
    return owner, project, table, members


async def lock_latency(urls: list[str], iterations: int) -> list[float]:
    owner, project, table, (locker, observer) = await _team(urls, 2, "latency")
    row = await owner.ok("row:add", {"tableId": table["id"], "values": {}})
    samples = []
    try:
        for i in range(iterations + 20):
            observer.forget("row:locked", "row:unlocked")
            seen = observer.wait_for("row:locked")
            t0 = time.perf_counter()
            await locker.ok("row:lock", {"tableId": table["id"], "rowId": row["id"]})
            await seen
            if i >= 20:  # warm-up
                samples.append(time.perf_counter() - t0)
            gone = observer.wait_for("row:unlocked")
            await locker.ok("row:unlock", {"tableId": table["id"], "rowId": row["id"]})
            await gone
    finally:
        for c in (owner, locker, observer):
            await c.close()
    return samples


async def contention(urls: list[str], racers: int, rounds: int) -> tuple[float, int, int]:
    owner, project, table, clients = await _team(urls, racers, "contention")
    row = await owner.ok("row:add", {"tableId": table["id"], "values": {}})
    payload = {"tableId": table["id"], "rowId": row["id"]}
    doubles = grants = 0
    try:
        t0 = time.perf_counter()
        for _ in range(rounds):
            acks = await asyncio.gather(*(c.call("row:lock", payload) for c in clients))
            won = [i for i, a in enumerate(acks) if a["ok"]]
            grants += len(won) == 1
            doubles += len(won) > 1
            for i in won:
                await clients[i].ok("row:unlock", payload)
        elapsed = time.perf_counter() - t0
    finally:
        for c in [owner, *clients]:
            await c.close()
    return grants / elapsed, grants, doubles


async def row_fanout(n: int, tmp: Path, args) -> tuple:
    with deploy("bare", n, tmp / "bare", {}) as bare_dep, \
            deploy("collab", n, tmp / "collab", {}) as collab_dep:
        results = await alternate({"bare": Run("bare", bare_dep, args),
                                   "collab": RowUpdateRun("collab", collab_dep, args)},
                                  args.rounds)
        return results["bare"], results["collab"]


def ms(values, q) -> float:
    return _quantile(values, q) * 1e3


async def amain(args) -> int:
    ok = True
    scenarios = [("single instance", 1, 10.0), ("2 instances + Redis", 2, 15.0)]
    print(f"locks: latency x{args.iterations}, contention {args.racers} racers x {args.rounds_c} "
          f"rounds, row-update fan-out to {args.clients} members x {args.messages} messages x "
          f"{args.rounds} rounds")
    for name, n, target in scenarios:
        with tempfile.TemporaryDirectory(prefix="bench-locks-") as tmp:
            tmp = Path(tmp)
            with deploy("collab", n, tmp / "locks", LOCK_ENV) as dep:
                urls = dep.urls
                lat = await lock_latency(urls if n == 1 else [urls[0], urls[1]], args.iterations)
                rate, grants, doubles = await contention(urls, args.racers, args.rounds_c)
            bare, collab = await row_fanout(n, tmp, args)
        p99 = ms(lat, 0.99)
        ratio = fanout._paired(collab.rates, bare.rates)
        print(f"\n{name}")
        verdict = "PASS" if p99 <= target else "FAIL"
        print(f"  row:lock -> row:locked seen by another client: p50 {ms(lat, 0.5):.2f} ms, "
              f"p99 {p99:.2f} ms  (target <= {target:.0f} ms: {verdict})")
        print(f"  {args.racers}-way contention: {rate:,.0f} grants/s, {grants} rounds with one "
              f"grant, {doubles} with more  ({'PASS' if doubles == 0 else 'FAIL'}: zero double "
              f"grants)")
        print(f"  row:update fan-out to {args.clients}: {collab.rate:,.0f} deliveries/s vs bare "
              f"broadcast {bare.rate:,.0f} -> {ratio:.0%}  (target >= 80 %: "
              f"{'PASS' if ratio >= 0.8 else 'FAIL'}); p99 {collab.pct(0.99) * 1e3:.0f} ms vs "
              f"{bare.pct(0.99) * 1e3:.0f} ms; server CPU/delivery "
              f"{collab.cpu_per_delivery_us:.0f} vs {bare.cpu_per_delivery_us:.0f} µs")
        ok &= p99 <= target and doubles == 0 and ratio >= 0.8
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--racers", type=int, default=50)
    p.add_argument("--rounds-c", type=int, default=100, help="contention rounds")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--payload-bytes", type=int, default=64)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--pace", default="delivered")
    p.add_argument("--py-spy", default=None)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.iterations, args.racers, args.rounds_c = 30, 10, 10
        args.clients, args.messages, args.rounds, args.warmup = 10, 20, 1, 5
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
