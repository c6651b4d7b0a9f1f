"""Capacity: thousands of signed-in sockets on one instance, this server against a bare
python-socketio server holding the same sockets in the same rooms.

    python -m bench.capacity                  # 5,000 sockets, 4 x 5 broadcasts, both servers
    python -m bench.capacity --quick          # 300 sockets, 2 x 2 broadcasts (a smoke test)
    python -m bench.capacity --help

For each server (``bare`` = bench/bare_server.py, ``collab`` = ``python -m server`` on the
embedded store), started as a child process by this script:

1. ``--users`` users each connect one socket and join the two projects (``project:join``
   twice): the users are online and every lazily built structure of the server exists.
2. RSS of the server process (children included, as ``PeakRss`` counts it) after
   ``--settle`` quiet seconds.
3. ``--sockets`` more sockets connect, signed in on connect (``auth.token``; the bare server
   takes the same handshake), spread over the users (tabs and devices), and each joins the
   same two projects, so each is in two project rooms. RSS again, settled: the difference
   over ``--sockets`` is the memory one connection costs the server.
4. ``--rounds`` rounds of ``--broadcasts``, alternating between the servers (both stay up
   with all their sockets, so load from elsewhere on the machine falls on both alike): one
   socket sends ``project:broadcast`` to the first project and the server pushes it to
   everyone else in the room (every socket above); each receiver records the time from the
   send to its arrival (``time.perf_counter``: CLOCK_MONOTONIC, one clock for all the
   processes of the machine). The next broadcast starts when every socket has the last one.
   Reported: p50 and p99 over all deliveries, the median time until the last socket had a
   broadcast, and the peak RSS meanwhile.

The sockets are raw websockets speaking Engine.IO 4 / Socket.IO 5 text packets (connect with
auth, events with ack ids, the server's pings answered): the server sees exactly what a
python-socketio or browser client sends, at a fraction of a python-socketio client's memory
and CPU, so ``--procs`` processes hold thousands. Target: this server's memory per connection
at most 1.3 x the bare server's. See bench/README.md.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing as mp
import resource
import statistics
import sys
import threading
import time
import traceback
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.server_process import PeakRss, pct, running_server, tree_rss_kb  # noqa: E402
from server.heap import TRIM_INTERVAL_S  # noqa: E402
from tests.client import Client, unique_email  # noqa: E402

now = time.perf_counter
TARGET_MEMORY = 1.3  # collab bytes per connection <= 1.3 x bare
COLLAB_ENV = {"LOG_LEVEL": "INFO", "BCRYPT_ROUNDS": "4"}  # one JSON line per event, as deployed
ROOMS = 2


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- a raw Socket.IO client -----------------------------------------------------------------


class RawSocket:
    """One Socket.IO connection over a websocket: ``40`` connect with auth, ``42[id]`` events,
    ``43<id>`` acks; Engine.IO pings (``2``) are answered (``3``)."""

    def __init__(self, on_push=None):
        self.on_push = on_push  # (arrival time, packet text after "42")
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._acks: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str, auth: dict) -> None:
        ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await session.ws_connect(ws_url, max_msg_size=0,
                                           timeout=aiohttp.ClientWSTimeout(ws_close=60))
        opened = await self.ws.receive_str(timeout=60)
        if not opened.startswith("0"):
            raise RuntimeError(f"no engine.io open packet: {opened[:100]!r}")
        await self.ws.send_str("40" + json.dumps(auth))
        reply = await self.ws.receive_str(timeout=60)
        while reply == "2":  # a ping before the connect's answer (a slow handshake)
            await self.ws.send_str("3")
            reply = await self.ws.receive_str(timeout=60)
        if not reply.startswith("40"):
            raise RuntimeError(f"socket.io connect refused: {reply[:200]!r}")
        self._reader = asyncio.create_task(self._read())

    async def call(self, event: str, data, timeout: float = 60) -> dict:
        ack_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = fut
        assert self.ws is not None
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data]))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._acks.pop(ack_id, None)

    async def ok(self, event: str, data) -> dict:
        ack = await self.call(event, data)
        if not ack.get("ok"):
            raise RuntimeError(f"{event} failed: {ack}")
        return ack.get("data")

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            text = msg.data
            if text.startswith("42"):
                if self.on_push is not None:
                    self.on_push(now(), text)
            elif text == "2":
                await self.ws.send_str("3")
            elif text.startswith("43"):
                digits = len(text) - len(text[2:].lstrip("0123456789"))
                fut = self._acks.get(int(text[2:digits]))
                if fut is not None and not fut.done():
                    fut.set_result(json.loads(text[digits:])[0])
            elif text.startswith(("41", "1")):
                break

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


# -- client processes -----------------------------------------------------------------------

Spec = tuple[dict, list[str]]  # (auth, project ids to join)


class Receivers:
    """This process's sockets; counts each broadcast's arrivals and records its latencies."""

    def __init__(self, url: str, report):
        self.url = url
        self.report = report  # ("delivered", seq) once every socket here has broadcast seq
        self.sockets: list[RawSocket] = []
        self.latencies = array("d")
        self.arrived: dict[int, int] = {}
        self.session: aiohttp.ClientSession | None = None

    def _on_push(self, t: float, text: str) -> None:
        event, push = json.loads(text[2:])
        if event != "project:broadcast" or push.get("event") != "capacity":
            return
        stamp = push["data"]
        self.latencies.append(t - stamp["t"])
        got = self.arrived.get(stamp["s"], 0) + 1
        self.arrived[stamp["s"]] = got
        if got == len(self.sockets):
            del self.arrived[stamp["s"]]
            self.report(("delivered", stamp["s"]))

    async def connect(self, specs: list[Spec], concurrency: int) -> int:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        gate = asyncio.Semaphore(concurrency)

        async def one(auth: dict, projects: list[str]) -> None:
            async with gate:
                sock = RawSocket(self._on_push)
                assert self.session is not None
                await sock.connect(self.session, self.url, auth)
                self.sockets.append(sock)
                for pid in projects:
                    await sock.ok("project:join", {"id": pid})

        await asyncio.gather(*(one(*spec) for spec in specs))
        return len(self.sockets)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def _client_process(conn, url: str) -> None:
    raise_fd_limit()
    asyncio.run(_client_loop(conn, url))


async def _client_loop(conn, url: str) -> None:
    group = Receivers(url, conn.send)
    loop = asyncio.get_running_loop()
    try:
        while True:
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "connect":
                specs, concurrency = arg
                conn.send(("connected", await group.connect(specs, concurrency)))
            elif cmd == "latencies":
                conn.send(("latencies", group.latencies.tobytes()))
                group.latencies = array("d")
            elif cmd == "close":
                break
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        await group.close()
        with contextlib.suppress(Exception):
            conn.send(("closed", None))


class ClientPool:
    """``procs`` client processes behind pipes; one reader thread per pipe."""

    def __init__(self, url: str, procs: int):
        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        for i in range(procs):
            parent, child = ctx.Pipe()
            self.pipes.append(parent)
            self.procs.append(ctx.Process(target=_client_process, args=(child, url), daemon=True,
                                          name=f"capacity-clients-{i}"))
        self.inbox: list[asyncio.Queue] = []
        self.delivered: dict[int, int] = {}
        self.complete: dict[int, asyncio.Future] = {}

    def _reader(self, i: int, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                msg = self.pipes[i].recv()
            except (EOFError, OSError):
                msg = ("eof", None)
            if msg[0] == "delivered":
                loop.call_soon_threadsafe(self._delivered, msg[1])
            else:
                loop.call_soon_threadsafe(self.inbox[i].put_nowait, msg)
            if msg[0] in ("eof", "closed"):
                return

    def _delivered(self, seq: int) -> None:
        got = self.delivered.get(seq, 0) + 1
        self.delivered[seq] = got
        fut = self.complete.get(seq)
        if got == len(self.pipes) and fut is not None and not fut.done():
            fut.set_result(now())

    async def _expect(self, i: int, want: str, timeout: float = 600):
        kind, value = await asyncio.wait_for(self.inbox[i].get(), timeout)
        if kind == "error":
            raise RuntimeError(f"client process {i} failed:\n{value}")
        if kind != want:
            raise RuntimeError(f"client process {i}: expected {want!r}, got {kind!r}")
        return value

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.inbox = [asyncio.Queue() for _ in self.pipes]
        for i, proc in enumerate(self.procs):
            proc.start()
            threading.Thread(target=self._reader, args=(i, loop), daemon=True).start()

    async def connect(self, specs: list[Spec], concurrency: int) -> int:
        n = len(self.pipes)
        for i, pipe in enumerate(self.pipes):
            pipe.send(("connect", (specs[i::n], concurrency)))
        return sum(await asyncio.gather(*(self._expect(i, "connected") for i in range(n))))

    def expect_delivery(self, seq: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.complete[seq] = fut
        if self.delivered.get(seq, 0) == len(self.pipes):
            fut.set_result(now())
        return fut

    async def latencies(self) -> list[float]:
        for pipe in self.pipes:
            pipe.send(("latencies", None))
        out: list[float] = []
        for i in range(len(self.pipes)):
            raw = await self._expect(i, "latencies")
            out.extend(array("d", raw))
        return out

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("close", None))
        for proc in self.procs:
            if proc.pid is None:
                continue
            await loop.run_in_executor(None, proc.join, 30)
            if proc.is_alive():
                proc.kill()
                proc.join()


# -- the two servers ------------------------------------------------------------------------


@dataclass
class Population:
    sender_auth: dict
    projects: list[str]
    online: list[Spec]  # one socket per user, connected first
    sockets: list[Spec]  # the measured sockets


async def populate_collab(url: str, users: int, sockets: int) -> Population:
    async with aiohttp.ClientSession() as http:
        async def register(i: int) -> dict:
            async with http.post(url + "/api/auth/register", json={
                    "email": unique_email(f"cap{i}"), "password": "correct horse"}) as resp:
                body = await resp.json()
                if not body.get("ok"):
                    raise RuntimeError(f"register failed: {body}")
                return body["data"]

        gate = asyncio.Semaphore(16)

        async def gated(i: int) -> dict:
            async with gate:
                return await register(i)

        accounts = await asyncio.gather(*(gated(i) for i in range(users)))
    owner = await Client(url, "owner").connect()
    try:
        owner_session = await owner.register(unique_email("cap-owner"))
        projects = [(await owner.ok("project:create", {"name": f"capacity {i}"}))["id"]
                    for i in range(ROOMS)]
        for pid in projects:
            for account in accounts:
                await owner.ok("project:member:add", {"id": pid, "role": "viewer",
                                                      "email": account["user"]["email"]})
    finally:
        await owner.close()
    auths = [{"token": a["tokens"]["accessToken"]} for a in accounts]
    return Population(
        sender_auth={"token": owner_session["tokens"]["accessToken"]}, projects=projects,
        online=[(auth, projects) for auth in auths],
        sockets=[(auths[i % users], projects) for i in range(sockets)])


async def populate_bare(url: str, users: int, sockets: int) -> Population:
    projects = [f"{i:024x}" for i in range(1, ROOMS + 1)]  # ids of the real ids' shape
    auths = [{"userId": f"{i:024x}"} for i in range(users)]
    return Population(sender_auth={"userId": "0" * 24}, projects=projects,
                      online=[(auth, projects) for auth in auths],
                      sockets=[(auths[i % users], projects) for i in range(sockets)])


# -- one server -----------------------------------------------------------------------------


def settled_rss_kb(pid: int, settle: float) -> int:
    """The server's RSS after ``settle`` quiet seconds: the last allocations done, and the
    free heap pages this server hands back every ``server.heap.TRIM_INTERVAL_S`` returned.
    The median of the last second's samples."""
    samples: list[int] = []
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        samples.append(tree_rss_kb(pid))
        time.sleep(0.25)
    return int(statistics.median(samples[-4:]))


@dataclass
class Result:
    kind: str
    sockets: int
    before_kb: int = 0
    after_kb: int = 0
    peak_kb: int = 0
    connect_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)

    @property
    def per_conn_kb(self) -> float:
        return (self.after_kb - self.before_kb) / self.sockets


class Deployment:
    """One server with all its sockets connected; broadcasts on demand."""

    def __init__(self, kind: str, args):
        self.kind, self.args = kind, args
        self.result = Result(kind, args.sockets)
        self.stack = contextlib.AsyncExitStack()
        self.seq = 0

    async def __aenter__(self) -> Deployment:
        args, stack = self.args, self.stack
        module, env = ("bench.bare_server", {}) if self.kind == "bare" else ("server", COLLAB_ENV)
        try:
            self.proc, url = await stack.enter_async_context(running_server(module, **env))
            populate = populate_bare if self.kind == "bare" else populate_collab
            people = await populate(url, args.users, args.sockets)
            self.project = people.projects[0]
            self.pool = ClientPool(url, args.procs)
            stack.push_async_callback(self.pool.close)
            await self.pool.start()
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self.sender = RawSocket()
            stack.push_async_callback(self.sender.close)
            await self.sender.connect(session, url, people.sender_auth)
            await self.sender.ok("project:join", {"id": self.project})
            await self.pool.connect(people.online, args.concurrency)
            await self.broadcast(1)  # warm-up: every code path of a broadcast has run once
            await self.pool.latencies()  # dropped
            self.result.completions.clear()
            self.result.peak_kb = 0
            r = self.result
            r.before_kb = await asyncio.to_thread(settled_rss_kb, self.proc.pid, args.settle)
            t0 = now()
            connected = await self.pool.connect(people.sockets, args.concurrency)
            r.connect_s = now() - t0
            assert connected == len(people.online) + len(people.sockets), connected
            r.after_kb = await asyncio.to_thread(settled_rss_kb, self.proc.pid, args.settle)
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def broadcast(self, count: int) -> None:
        """``count`` broadcasts one after another, each when the last has reached every
        socket; records the time until it had."""
        with PeakRss(self.proc.pid) as peak:
            for _ in range(count):
                seq, self.seq = self.seq, self.seq + 1
                done = self.pool.expect_delivery(seq)
                t = now()
                await self.sender.ok("project:broadcast", {
                    "id": self.project, "event": "capacity", "data": {"t": t, "s": seq}})
                self.result.completions.append(await asyncio.wait_for(done, 120) - t)
        self.result.peak_kb = max(self.result.peak_kb, peak.peak_kb)

    async def __aexit__(self, *exc) -> None:
        self.result.latencies = await self.pool.latencies()
        await self.stack.aclose()


# -- report ---------------------------------------------------------------------------------


def report(results: list[Result], args) -> None:
    total = args.sockets + args.users
    print(f"\n{args.sockets:,} sockets signed in on one instance ({args.users} users, "
          f"{args.sockets // args.users} more sockets each), each in {ROOMS} project rooms; "
          f"{args.rounds} x {args.broadcasts} broadcasts to a room of all {total:,}")
    print(f"{'server':8} {'RSS before':>11} {'RSS after':>10} {'KB/conn':>8} {'connect/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'last ms':>8} {'peak RSS':>9}")
    for r in results:
        print(f"{r.kind:8} {r.before_kb / 1024:9.1f}MB {r.after_kb / 1024:8.1f}MB "
              f"{r.per_conn_kb:8.1f} {r.sockets / r.connect_s:10.0f} "
              f"{pct(r.latencies, 0.5) * 1e3:7.1f} {pct(r.latencies, 0.99) * 1e3:7.1f} "
              f"{statistics.median(r.completions) * 1e3:8.1f} {r.peak_kb / 1024:7.1f}MB")
    by = {r.kind: r for r in results}
    if "bare" in by and "collab" in by:
        bare, collab = by["bare"], by["collab"]
        ratio = collab.per_conn_kb / bare.per_conn_kb
        p99 = pct(collab.latencies, 0.99) / pct(bare.latencies, 0.99)
        last = statistics.median(collab.completions) / statistics.median(bare.completions)
        print(f"collab/bare: memory per connection {ratio:.2f}x "
              f"({'PASS' if ratio <= TARGET_MEMORY else 'FAIL'}, target <= {TARGET_MEMORY}x); "
              f"broadcast p99 {p99:.2f}x, last delivery {last:.2f}x")


async def run(args) -> None:
    raise_fd_limit()  # inherited by the server processes
    async with contextlib.AsyncExitStack() as stack:
        deployments = []
        for kind in args.servers:
            print(f"{kind}: {args.users} users online, then {args.sockets:,} more sockets ...",
                  flush=True)
            deployments.append(await stack.enter_async_context(Deployment(kind, args)))
        # Rounds alternate (bare, collab, collab, bare, ...), so load from elsewhere on a
        # shared machine falls on both alike.
        for i in range(args.rounds):
            for d in deployments if i % 2 == 0 else deployments[::-1]:
                await d.broadcast(args.broadcasts)
        results = [d.result for d in deployments]
    report(results, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sockets", type=int, default=5000, help="measured sockets")
    ap.add_argument("--users", type=int, default=100,
                    help="users the sockets belong to (each first connects one socket)")
    ap.add_argument("--broadcasts", type=int, default=5, help="broadcasts per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--concurrency", type=int, default=25,
                    help="connections being set up at once, per client process")
    ap.add_argument("--settle", type=float, default=TRIM_INTERVAL_S + 5,
                    help="quiet seconds before each RSS reading")
    ap.add_argument("--servers", nargs="+", default=["bare", "collab"],
                    choices=["bare", "collab"])
    ap.add_argument("--quick", action="store_true", help="300 sockets, 2 x 2 broadcasts")
    args = ap.parse_args()
    if args.quick:
        args.sockets, args.users, args.broadcasts, args.rounds, args.settle = 300, 20, 2, 2, 3
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
