"""What timing every store operation costs (server/store_metrics.py).

Prints µs per call of a repository method that does nothing (the wrapper's own cost, its
baseline the bare call) and of a real SQLite ``users.get_user`` (the cost beside the work it
measures), each unmeasured and measured, best of a few rounds:

    .venv/bin/python -m bench.store_overhead [--calls 100000]
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from server.metrics import Metrics
from server.store_metrics import MeasuredRepo
from store.sqlite import SqliteStore


class Idle:
    async def get(self, key: str) -> None:
        return None


async def per_call(bare, measured, calls: int, rounds: int = 7) -> tuple[float, float]:
    """µs per call of each, best of ``rounds`` taken in turns (a shared machine drifts)."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, call in enumerate((bare, measured)):
            started = time.perf_counter()
            for _ in range(calls):
                await call("k")
            best[i] = min(best[i], (time.perf_counter() - started) / calls)
    return best[0] * 1e6, best[1] * 1e6


async def main(calls: int) -> None:
    metrics = Metrics()
    rows = []
    idle = Idle()
    measured_idle = MeasuredRepo(idle, "idle", metrics.store_seconds, metrics.store_errors)
    rows.append(("no-op method", *await per_call(idle.get, measured_idle.get, calls)))
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "bench.sqlite3")
        try:
            user = await store.users.create_user(email="b@example.com", username="b",
                                                 password_hash="x")
            users = MeasuredRepo(store.users, "users", metrics.store_seconds,
                                 metrics.store_errors)
            n = max(1000, calls // 20)

            async def bare(_):
                await store.users.get_user(user.id)

            async def timed(_):
                await users.get_user(user.id)
            rows.append(("sqlite users.get_user", *await per_call(bare, timed, n)))
        finally:
            await store.close()
    print(f"{'call':<24}{'bare µs':>10}{'measured µs':>14}{'overhead µs':>14}")
    for name, bare_us, measured_us in rows:
        print(f"{name:<24}{bare_us:>10.2f}{measured_us:>14.2f}{measured_us - bare_us:>14.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().calls))
