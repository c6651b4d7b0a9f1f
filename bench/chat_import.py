"""Chat-history import benchmark: the whole import through the server against chat-miner's
WhatsApp parser alone, search latency over a million stored messages, and the server's
memory during a million-message import.

    python -m bench.chat_import                 # 200 000 messages, then 1 000 000
    python -m bench.chat_import --messages 50000 --big 200000 --queries 100   # quicker

Measured, on the same generated WhatsApp export (Android format, three authors, some
multi-line messages and media placeholders):
(a) chat-miner's ``WhatsAppParser`` alone (parse_file; its own process), the baseline;
(b) the server's whole import — a real ``python -m server`` on the embedded store: upload
    excluded, ``chat:import`` timed from its ack to ``chat:imported`` (parse + store +
    search index). Target: (b) <= (a) / 3.
Messages are drawn from a 20 000-word vocabulary with natural-language (Zipf) frequencies.
Then a 1 000 000-message export is imported (peak RSS growth of the server process over its
idle RSS, sampled every 50 ms; target <= 150 MB) and ``chat:search`` is timed for content
words, word pairs, phrases seen in the chat, prefixes and an author filter over those
messages (target p95 <= 50 ms); the 20 commonest words, and prefixes of their first three
letters, are timed apart.
chat-miner is not a dependency of the server: ``pip install chat-miner`` (it pulls pandas)
to get (a), in this Python or in another one named by ``--miner-python``; without it the
baseline is skipped and said so.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.server_process import PeakRss, pct, rss_kb, running_server

AUTHORS = ["Ana Sousa", "Bo Chen", "Zoë Martin", "Dmitri", "Léa"]
VOCABULARY = 20_000
COMMON = 20  # the most frequent words: the worst case for ranking, reported apart


def vocabulary(n: int = VOCABULARY) -> list[str]:
    """``n`` distinct pronounceable words, some with accents (rank 0 is the most frequent)."""
    rng = random.Random(11)
    onsets = "b c d f g h j k l m n p r s t v w z br tr pl st ch".split()
    vowels = "a e i o u é à ö".split()
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        word = "".join(rng.choice(onsets) + rng.choice(vowels)
                       for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


WORDS = vocabulary()
# Word frequencies fall off as in natural language (Zipf, exponent ~1.05).
CUM_WEIGHTS = list(itertools.accumulate(1 / (rank + 1) ** 1.05 for rank in range(VOCABULARY)))

MINER = r"""
import sys, time
from chatminer.chatparsers import WhatsAppParser
t0 = time.perf_counter()
parser = WhatsAppParser(sys.argv[1])
parser.parse_file()
df = parser.parsed_messages.get_df()
print(len(df), time.perf_counter() - t0)
"""


def write_export(path: Path, n: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    at = datetime(2021, 1, 1, 7, 0)
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"{at:%d/%m/%Y, %H:%M} - Messages and calls are end-to-end encrypted.\n")
        for i in range(n):
            at += timedelta(seconds=rng.randint(5, 400))
            words = " ".join(rng.choices(WORDS, cum_weights=CUM_WEIGHTS,
                                         k=rng.randint(3, 14)))
            text = "<Media omitted>" if i % 97 == 0 else words
            if i % 31 == 0:
                text += "\n" + words.split()[0] + " " + words.split()[-1]
            out.write(f"{at:%d/%m/%Y, %H:%M} - {AUTHORS[i % len(AUTHORS)]}: {text}\n")
    return path


def time_chat_miner(path: Path, python: str) -> tuple[int, float] | None:
    if subprocess.run([python, "-c", "import chatminer"], capture_output=True).returncode:
        return None
    out = subprocess.run([python, "-c", MINER, str(path)], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


async def import_once(c, url: str, project_id: str, path: Path, upload) -> tuple[float, dict]:
    status, out = await upload(url, c.tokens["accessToken"], project_id, path.read_bytes(),
                               path.name)
    assert status == 201, out
    fid = out["data"]["id"]
    c.forget("chat:imported")
    started = time.perf_counter()
    await c.ok("chat:import", {"projectId": project_id, "fileId": fid})
    done = await c.wait_for("chat:imported", lambda d: d["fileId"] == fid, timeout=7200)
    return time.perf_counter() - started, done["chats"][0]


async def server_part(small: Path, big: Path, rounds: int, queries: int) -> dict:
    from tests.client import Client, unique_email
    from tests.files_helpers import upload

    async with running_server() as (proc, url):
        c = await Client(url).connect()
        c.sio.on("disconnect", lambda *why: print(f"client disconnected: {why}", flush=True))
        await c.register(unique_email("bench"))
        p = await c.ok("project:create", {"name": "bench"})
        await c.ok("project:join", {"id": p["id"]})
        await import_once(c, url, p["id"], small, upload)  # warm-up
        times = []
        for _ in range(rounds):
            q = await c.ok("project:create", {"name": "round"})
            await c.ok("project:join", {"id": q["id"]})
            took, chat = await import_once(c, url, q["id"], small, upload)
            times.append(took)
        small_count = chat["messageCount"]

        big_project = await c.ok("project:create", {"name": "big"})
        await c.ok("project:join", {"id": big_project["id"]})
        idle = rss_kb(proc.pid)
        with PeakRss(proc.pid) as peak:
            big_s, big_chat = await import_once(c, url, big_project["id"], big, upload)
        rng = random.Random(3)
        sample = await c.ok("chat:messages", {"chatId": big_chat["id"], "limit": 500})
        texts = [m["text"].split() for m in sample["items"] if len(m["text"].split()) > 2]

        def phrase() -> str:
            words = rng.choice(texts)
            i = rng.randrange(len(words) - 1)
            return f'"{words[i]} {words[i + 1]}"'

        # What people search for: content words (not the most frequent ones), a pair of
        # them, a phrase seen in the chat, a prefix; the commonest words are timed apart.
        kinds = {"word": lambda: WORDS[rng.randint(COMMON * 2, VOCABULARY - 1)],
                 "two words": lambda: f"{WORDS[rng.randint(COMMON * 2, VOCABULARY - 1)]} "
                                      f"{WORDS[rng.randint(COMMON, 5000)]}",
                 "phrase": phrase,
                 "prefix": lambda: WORDS[rng.randint(COMMON, 5000)][:4] + "*",
                 "author filter": lambda: WORDS[rng.randint(COMMON * 2, VOCABULARY - 1)]}
        search_ms: dict[str, list[float]] = {k: [] for k in kinds}
        slowest = (0.0, "")
        for i in range(queries):
            kind = list(kinds)[i % len(kinds)]
            payload = {"projectId": big_project["id"], "query": kinds[kind](), "limit": 20}
            if kind == "author filter":
                payload["author"] = rng.choice(AUTHORS)
            t = time.perf_counter()
            await c.ok("chat:search", payload, timeout=60)
            search_ms[kind].append((time.perf_counter() - t) * 1000)
            slowest = max(slowest, (search_ms[kind][-1], f"{kind} {payload['query']!r}"))
        common_ms, common_prefix_ms = [], []
        for word in WORDS[:COMMON]:
            for query, into in ((word, common_ms), (word[:3] + "*", common_prefix_ms)):
                t = time.perf_counter()
                await c.ok("chat:search", {"projectId": big_project["id"], "query": query,
                                           "limit": 20}, timeout=60)
                into.append((time.perf_counter() - t) * 1000)
        await c.close()
        every = [x for v in search_ms.values() for x in v]
        return {"import_s": statistics.median(times), "runs": times, "count": small_count,
                "big_s": big_s, "big_count": big_chat["messageCount"],
                "idle_mb": idle / 1024, "peak_mb": peak.peak_kb / 1024,
                "growth_mb": (peak.peak_kb - idle) / 1024,
                "search_p50": pct(every, 0.5), "search_p95": pct(every, 0.95),
                "by_kind": {k: pct(v, 0.95) for k, v in search_ms.items() if v},
                "common_p50": pct(common_ms, 0.5), "common_max": max(common_ms),
                "prefix_p50": pct(common_prefix_ms, 0.5), "prefix_max": max(common_prefix_ms),
                "slowest": slowest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--miner-python", default=sys.executable,
                    help="the Python that has chat-miner (e.g. a venv of its own: it pulls "
                         "pandas); this one by default")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-chats-"))
    try:
        small = write_export(workdir / "WhatsApp Chat with Bench.txt", args.messages)
        big = write_export(workdir / "WhatsApp Chat with Big.txt", args.big, seed=2)
        print(f"exports: {args.messages:,} messages ({small.stat().st_size / 1e6:.1f} MB), "
              f"{args.big:,} messages ({big.stat().st_size / 1e6:.1f} MB)")
        miner = time_chat_miner(small, args.miner_python)
        if miner is None:
            print(f"(a) chat-miner WhatsAppParser: not installed in {args.miner_python}"
                  " (pip install chat-miner)")
        else:
            print(f"(a) chat-miner WhatsAppParser alone: {miner[1]:7.2f} s  "
                  f"({miner[0]:,} messages, {miner[0] / miner[1]:,.0f}/s)")
        s = asyncio.run(server_part(small, big, args.rounds, args.queries))
        b = s["import_s"]
        print(f"(b) server import (parse + store + index, SQLite): {b:7.2f} s  "
              f"({s['count']:,} messages, {s['count'] / b:,.0f}/s)  runs "
              f"{', '.join(f'{x:.2f}' for x in s['runs'])}")
        if miner is not None:
            print(f"    (a)/(b) = {miner[1] / b:.1f}x  (target >= 3x)")
        print(f"1M import: {s['big_s']:.1f} s for {s['big_count']:,} messages; server RSS "
              f"idle {s['idle_mb']:.0f} MB, peak {s['peak_mb']:.0f} MB, growth "
              f"{s['growth_mb']:.0f} MB  (target <= 150 MB)")
        print(f"chat:search over {s['big_count']:,} messages: p50 {s['search_p50']:.1f} ms, "
              f"p95 {s['search_p95']:.1f} ms  (target p95 <= 50 ms); p95 by kind: "
              + ", ".join(f"{k} {v:.1f}" for k, v in s["by_kind"].items()))
        print(f"    slowest: {s['slowest'][0]:.1f} ms ({s['slowest'][1]})")
        print(f"    the {COMMON} commonest words (each in a large share of all messages): "
              f"p50 {s['common_p50']:.1f} ms, max {s['common_max']:.1f} ms; their first "
              f"three letters as prefixes: p50 {s['prefix_p50']:.1f} ms, "
              f"max {s['prefix_max']:.1f} ms")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
