"""``admin:metrics`` latency on a big site: 100 000 users (a fifth seen in the last day, a
tenth guests) and 1 000 000 AI chat messages in 10 000 conversations, on the embedded store.

    python -m bench.admin_metrics                       # 100 000 users, 1 000 000 messages
    python -m bench.admin_metrics --users 10000 --messages 100000 --calls 100   # quicker

The data is written straight into the SQLite file before the server starts (the store's own
triggers keep the site counters as they would for writes through the server); then a real
``python -m server`` answers ``admin:metrics`` ``--calls`` times to one admin socket, one
call at a time. Target: p95 <= 50 ms. For scale it also prints what one ``count(*)`` over
the messages costs (what the counters avoid).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import bcrypt

from bench.server_process import pct, running_server
from store.ids import iso, new_id, utcnow
from store.sqlite import SqliteStore
from tests.client import Client

PASSWORD = "bench password"


async def migrate(path: Path) -> None:
    store = await SqliteStore.open(path)
    await store.close()


def populate(path: Path, users: int, messages: int) -> str:
    """Returns the admin's email."""
    rng = random.Random(5)
    now = utcnow()
    stamp = iso(now)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    admin_email = "admin@bench.example"
    rows, ids = [], []
    for i in range(users):
        uid = new_id()
        ids.append(uid)
        guest = i % 10 == 0 and i
        email = admin_email if i == 0 else (None if guest else f"user{i}@bench.example")
        seen = iso(now) if rng.random() < 0.2 else None
        rows.append((uid, email, email, f"user{i}", f"user{i}", None if guest else digest,
                     "admin" if i == 0 else "user", int(bool(guest)), 1, None, None, stamp,
                     stamp, None, seen))
    conn.executemany(
        "INSERT INTO users (id, email, email_lc, username, username_lc, password_hash, role,"
        " is_guest, is_active, remaining_imports, remaining_messages, created_at, updated_at,"
        " last_login_at, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    projects = [(new_id(), f"p{i}", ids[rng.randrange(users)]) for i in range(1000)]
    conn.executemany("INSERT INTO projects (id, name, description, owner_id, created_at,"
                     " updated_at) VALUES (?,?,'',?,?,?)",
                     [(pid, name, owner, stamp, stamp) for pid, name, owner in projects])
    conversations = [(new_id(), projects[i % len(projects)][0], projects[i % len(projects)][2])
                     for i in range(10_000)]
    conn.executemany("INSERT INTO conversations (id, project_id, owner_id, title, created_at,"
                     " updated_at) VALUES (?,?,?,NULL,?,?)",
                     [(cid, pid, owner, stamp, stamp) for cid, pid, owner in conversations])
    batch = []
    for i in range(messages):
        cid, _, owner = conversations[i % len(conversations)]
        batch.append((new_id(), cid, "user" if i % 2 == 0 else "assistant", "hello there",
                      "done", owner, "[]", "{}", stamp, stamp))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO chat_messages (id, conversation_id, role, content,"
                             " status, author_id, attachments, metadata, created_at, updated_at)"
                             " VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
            batch = []
    if batch:
        conn.executemany("INSERT INTO chat_messages (id, conversation_id, role, content, status,"
                         " author_id, attachments, metadata, created_at, updated_at)"
                         " VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    conn.commit()
    conn.close()
    return admin_email


def count_scan(path: Path) -> float:
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    conn.execute("SELECT count(*) FROM chat_messages").fetchone()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    db = data / "collab.sqlite3"
    await migrate(db)
    started = time.perf_counter()
    admin_email = populate(db, args.users, args.messages)
    print(f"populated {args.users:,} users, {args.messages:,} messages in "
          f"{time.perf_counter() - started:.1f} s")
    scan = count_scan(db)
    async with running_server(data_dir=data) as (_proc, url):
        admin = await Client(url, "admin").connect()
        await admin.ok("auth:login", {"login": admin_email, "password": PASSWORD})
        first = await admin.ok("admin:metrics")
        assert first["totalUsers"] == args.users and first["totalMessages"] == args.messages, \
            first
        times = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            await admin.ok("admin:metrics")
            times.append((time.perf_counter() - t0) * 1000)
        await admin.close()
    p50, p95, p99 = pct(times, 0.5), pct(times, 0.95), pct(times, 0.99)
    print(json.dumps({k: first[k] for k in ("totalUsers", "totalGuests", "activeUsers24h",
                                            "totalMessages", "totalConversations")}))
    print(f"admin:metrics over {args.calls} calls: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"p99 {p99:.2f} ms (target p95 <= 50 ms: {'met' if p95 <= 50 else 'MISSED'})")
    print(f"for scale: one count(*) over the {args.messages:,} messages takes "
          f"{scan * 1000:.1f} ms; the counters make it a row read")


if __name__ == "__main__":
    asyncio.run(main())
