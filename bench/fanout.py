"""Fan-out benchmark: ``project:broadcast`` to a room, this server against a bare
python-socketio server doing the same broadcast.

    python -m bench.fanout                 # 100 receivers x 200 messages, both scenarios
    python -m bench.fanout --quick         # a tiny run (smoke test)
    python -m bench.fanout --help

For each scenario (one instance; two instances + Redis) and each server (``bare`` =
bench/bare_server.py, ``collab`` = ``python -m server``) the script starts the processes
itself (redis-server, the instances; every child torn down at the end), puts N receiving
clients and one sender in one project room, warms up, then runs measured rounds of M
messages per server, alternating bare and collab round by round with both deployments up
(so load from elsewhere on a shared machine hits both alike). Every message carries its
send time (``time.perf_counter()``, CLOCK_MONOTONIC on Linux, so one clock for every
process on the machine); each receiver records ``now - sent`` on arrival. Reported per
server: deliveries/s (deliveries / time from first send to last arrival, median over
rounds), p50/p99 latency (all deliveries of all rounds), and the server processes' CPU
time per delivery (from /proc, so it isolates the server even when the clients are the
bottleneck). Then the ratios collab/bare (median of the back-to-back round pairs) and the
targets (issue 17): deliveries/s >= 95 % of bare, p99 <= 1.2 x bare.

Both servers get exactly the same traffic: the same client code, payload, room size,
sender pacing and websocket transport. The sender keeps at most ``--window`` messages in
flight, a message counting until every receiver has it (``--pace delivered``, default):
that keeps the server busy while bounding the queues, so p99 is the latency of a loaded
server rather than the length of a backlog. ``--pace acked`` counts a message until its
ack instead (acks come back before the pushes are written, so queues grow and latency
mostly measures the backlog). The receivers run in ``--procs`` child processes
(python-socketio AsyncClients, spread evenly) so that decoding 20 000 pushes does not
compete with the sender in one event loop; ``--procs 0`` keeps them in this process.
See bench/README.md.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import socketio

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/fanout.py` as well as `python -m bench.fanout`
    sys.path.insert(0, str(REPO))

from tests.client import Client, unique_email  # noqa: E402
from tests.cluster.harness import RedisServer, ServerInstance  # noqa: E402

now = time.perf_counter  # CLOCK_MONOTONIC on Linux: comparable across processes

# The real server limits broadcasts per socket (BROADCAST_RATE 100/s, burst 200). The
# sender here is paced by acks, not by a clock, so the limit is raised out of the way for
# the benchmark: the token bucket still runs on every message (its cost is measured), it
# just never refuses. Pacing below 100/s instead would cap both servers at 100 x N
# deliveries/s and measure the pacing, not the servers.
COLLAB_ENV = {"BROADCAST_RATE": "1000000", "BROADCAST_BURST": "1000000",
              "BCRYPT_ROUNDS": "4", "LOG_LEVEL": "INFO"}

TARGET_RATE = 0.95  # collab deliveries/s >= 95 % of bare
TARGET_P99 = 1.2  # collab p99 <= 1.2 x bare p99
TARGET_SEQ_RATE = 0.90  # --sequencing: sequenced deliveries/s >= 90 % of unsequenced


# -- receivers --------------------------------------------------------------------------


@dataclass
class PhaseStats:
    expected: int = 1 << 62
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    lat: array = field(default_factory=lambda: array("d"))
    done: asyncio.Event = field(default_factory=asyncio.Event)
    per_seq: dict = field(default_factory=dict)


class ReceiverGroup:
    """Some receiving clients in one event loop, counting pushes per phase."""

    def __init__(self, specs: list[tuple[str, str, str]], project_id: str, on_delivered=None):
        self.specs = specs  # (url, token, user id)
        self.project_id = project_id
        self.clients: list[socketio.AsyncClient] = []
        self.stats: dict[str, PhaseStats] = {}
        self.bad = 0
        # Called with (phase, seq) once every client of this group has that message.
        self.on_delivered = on_delivered

    def _on_broadcast(self, push):
        t = now()
        data = push["data"]
        if push["projectId"] != self.project_id:
            self.bad += 1
            return
        st = self.stats.get(data["p"])
        if st is None:
            st = self.stats[data["p"]] = PhaseStats()
        st.lat.append(t - data["t"])
        st.count += 1
        if st.count == 1:
            st.first = t
        st.last = t
        seq = data["s"]
        got = st.per_seq.get(seq, 0) + 1
        if got == len(self.specs):
            st.per_seq.pop(seq, None)
            if self.on_delivered is not None:
                self.on_delivered((data["p"], seq))
        else:
            st.per_seq[seq] = got
        if st.count >= st.expected:
            st.done.set()

    async def connect(self, concurrency: int = 20) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(url: str, token: str, user_id: str) -> None:
            async with sem:
                sio = socketio.AsyncClient(reconnection=False, request_timeout=60)
                sio.on("project:broadcast", self._on_broadcast)
                # bench/locks.py fans out row updates: the stamp rides in the row's values.
                sio.on("row:updated", lambda push: self._on_broadcast(
                    {"projectId": push["projectId"], "data": push["row"]["values"]}))
                await sio.connect(url, auth={"token": token, "userId": user_id},
                                  transports=["websocket"], wait_timeout=30)
                self.clients.append(sio)
                ack = await sio.call("project:join", {"id": self.project_id}, timeout=60)
                if not ack.get("ok"):
                    raise RuntimeError(f"project:join failed: {ack}")

        await asyncio.gather(*(one(*spec) for spec in self.specs))

    async def collect(self, phase: str, per_client: int, timeout: float) -> dict:
        st = self.stats.get(phase)
        if st is None:
            st = self.stats[phase] = PhaseStats()
        st.expected = per_client * len(self.specs)
        if st.count >= st.expected:
            st.done.set()
        cpu0 = time.process_time()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(st.done.wait(), timeout)
        result = {"count": st.count, "expected": st.expected, "first": st.first,
                  "last": st.last, "lat": st.lat.tobytes(), "cpu": time.process_time() - cpu0,
                  "bad": self.bad}
        del self.stats[phase]
        return result

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


def _receiver_process(conn, specs, project_id) -> None:
    """Child process: a ReceiverGroup driven by commands over a pipe."""
    asyncio.run(_receiver_loop(conn, specs, project_id))


async def _receiver_loop(conn, specs, project_id) -> None:
    group = ReceiverGroup(specs, project_id, lambda key: conn.send(("delivered", key)))
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task] = set()
    try:
        await group.connect()
        conn.send(("ready", len(group.clients)))
        while True:
            cmd, arg = await loop.run_in_executor(None, conn.recv)
            if cmd == "close":
                break
            if cmd == "collect":
                phase, per_client, timeout = arg

                async def run(phase=phase, per_client=per_client, timeout=timeout):
                    conn.send(("result", await group.collect(phase, per_client, timeout)))

                task = asyncio.create_task(run())
                pending.add(task)
                task.add_done_callback(pending.discard)
                conn.send(("armed", phase))
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        await group.close()


class LocalPool:
    """All receivers in this process (``--procs 0``)."""

    parts = 1

    def __init__(self, specs, project_id):
        self.group = ReceiverGroup(specs, project_id, self._delivered)
        self.on_delivered = None

    def _delivered(self, key) -> None:
        if self.on_delivered is not None:
            self.on_delivered(key)

    async def start(self) -> None:
        await self.group.connect()

    async def arm(self, phase: str, per_client: int, timeout: float) -> asyncio.Future:
        task = asyncio.ensure_future(self.group.collect(phase, per_client, timeout))
        await asyncio.sleep(0)  # let collect() take its CPU baseline before sending starts
        return asyncio.ensure_future(_as_list(task))

    async def close(self) -> None:
        await self.group.close()


async def _as_list(task) -> list[dict]:
    result = await task
    result["cpu"] = 0.0  # same process: already in the sender's process_time()
    return [result]


class ProcPool:
    """Receivers spread over child processes, each a ReceiverGroup behind a pipe.

    One reader thread per pipe hands messages to the event loop: per-message delivery
    reports go straight to ``on_delivered`` (the sender's window), the rest to a queue.
    """

    def __init__(self, specs, project_id, procs: int):
        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        for i in range(procs):
            chunk = specs[i::procs]
            if not chunk:
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_receiver_process, args=(child, chunk, project_id),
                               daemon=True, name=f"fanout-receivers-{i}")
            self.pipes.append(parent)
            self.procs.append(proc)
        self.parts = len(self.pipes)
        self.on_delivered = None
        self.inbox: list[asyncio.Queue] = []

    def _reader(self, i: int, loop: asyncio.AbstractEventLoop) -> None:
        pipe = self.pipes[i]
        while True:
            try:
                msg = pipe.recv()
            except (EOFError, OSError):
                msg = ("eof", None)
            if msg[0] == "delivered":
                loop.call_soon_threadsafe(self._delivered, msg[1])
            else:
                loop.call_soon_threadsafe(self.inbox[i].put_nowait, msg)
            if msg[0] in ("eof", "closed"):
                return

    def _delivered(self, key) -> None:
        if self.on_delivered is not None:
            self.on_delivered(key)

    async def _expect(self, i: int, want: str, timeout: float = 180.0):
        try:
            kind, value = await asyncio.wait_for(self.inbox[i].get(), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"receiver process {i}: no {want!r} within {timeout:.0f} s") from None
        if kind == "error":
            raise RuntimeError(f"receiver process {i} failed:\n{value}")
        if kind != want:
            raise RuntimeError(f"receiver process {i}: expected {want!r}, got {kind!r}")
        return value

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.inbox = [asyncio.Queue() for _ in self.pipes]
        for i, proc in enumerate(self.procs):
            proc.start()
            threading.Thread(target=self._reader, args=(i, loop), daemon=True).start()
        await asyncio.gather(*(self._expect(i, "ready") for i in range(self.parts)))

    async def arm(self, phase: str, per_client: int, timeout: float) -> asyncio.Future:
        for pipe in self.pipes:
            pipe.send(("collect", (phase, per_client, timeout)))
        await asyncio.gather(*(self._expect(i, "armed") for i in range(self.parts)))
        return asyncio.ensure_future(asyncio.gather(
            *(self._expect(i, "result", timeout + 60) for i in range(self.parts))))

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("close", None))
        for proc in self.procs:
            if proc.pid is None:
                continue
            await loop.run_in_executor(None, proc.join, 10)
            if proc.is_alive():
                proc.kill()
                proc.join()


class Window:
    """At most ``size`` messages not yet delivered to every receiver (``--pace delivered``)."""

    def __init__(self, size: int, parts: int):
        self.sem = asyncio.Semaphore(size)
        self.parts = parts  # receiver groups that each report a message once
        self.seen: dict = {}

    def delivered(self, key) -> None:
        got = self.seen.get(key, 0) + 1
        if got == self.parts:
            self.seen.pop(key, None)
            self.sem.release()
        else:
            self.seen[key] = got


# -- servers ----------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields_ = fh.read().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Deployment:
    kind: str
    instances: list[ServerInstance]
    redis: RedisServer | None

    @property
    def urls(self) -> list[str]:
        return [inst.url for inst in self.instances]

    def server_cpu(self) -> float:
        return sum(proc_cpu(inst.pid) for inst in self.instances)

    def redis_cpu(self) -> float:
        return proc_cpu(self.redis.process.pid) if self.redis else 0.0


@contextlib.contextmanager
def deploy(kind: str, n: int, tmp: Path, extra_env: dict[str, str]):
    """Start redis (n > 1) and n instances of ``kind``; stop everything on exit."""
    with contextlib.ExitStack() as stack:
        redis = None
        if n > 1:
            redis = RedisServer().start()
            stack.callback(redis.stop)
        data_dir = tmp / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "bench.bare_server"] if kind == "bare" else None
        env = dict(COLLAB_ENV if kind == "collab" else {})
        env.update(extra_env)
        secret = secrets.token_hex(32)  # shared: a token from one instance works on all
        instances = []
        for i in range(n):
            inst = ServerInstance(f"{kind}{i}", data_dir=data_dir, jwt_secret=secret,
                                  redis_url=redis.url if redis else None, extra_env=env,
                                  log_dir=tmp / "logs", argv=argv)
            instances.append(inst)
            stack.callback(inst.stop)
            inst.start(wait=False)
        for inst in instances:
            inst.wait_ready(timeout=60)
        yield Deployment(kind, instances, redis)


# -- one server, one scenario -----------------------------------------------------------


def _quantile(values, q: float) -> float:
    if not len(values):
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))]


def _paired(collab: list[float], bare: list[float]) -> float:
    """Median of per-round ratios: round i of each server ran back to back."""
    pairs = [c / b for c, b in zip(collab, bare) if b]
    return statistics.median(pairs) if pairs else float("nan")


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used (busy time of all cores)."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class RunResult:
    kind: str
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    round_p99: list[float] = field(default_factory=list)
    delivered: int = 0
    expected: int = 0
    server_cpu: float = 0.0
    redis_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_cpu: float = 0.0
    wall: float = 0.0
    errors: int = 0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def pct(self, q: float) -> float:
        return _quantile(self.latencies, q)

    @property
    def cpu_per_delivery_us(self) -> float:
        return self.server_cpu / self.delivered * 1e6 if self.delivered else float("nan")

    @property
    def other_cpu(self) -> float:
        """CPU used meanwhile by processes outside the benchmark (a shared machine)."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.redis_cpu - self.client_cpu)


async def _setup_collab(urls: list[str], n_clients: int):
    owner = await Client(urls[0], "sender").connect()
    await owner.register(unique_email("bench-owner"))
    project = await owner.ok("project:create", {"name": "fan-out bench"})
    sem = asyncio.Semaphore(16)

    async def register(i: int):
        async with sem:
            c = await Client(urls[i % len(urls)], f"r{i}").connect()
            try:
                out = await c.register(unique_email("bench"))
            finally:
                await c.close()
            return urls[i % len(urls)], out["tokens"]["accessToken"], out["user"]["id"], \
                out["user"]["email"]

    users = await asyncio.gather(*(register(i) for i in range(n_clients)))
    for _, _, _, email in users:
        await owner.ok("project:member:add", {"id": project["id"], "email": email,
                                              "role": "viewer"}, timeout=60)
    await owner.ok("project:join", {"id": project["id"]}, timeout=60)
    return owner, project["id"], [(url, token, uid) for url, token, uid, _ in users]


async def _setup_bare(urls: list[str], n_clients: int):
    project_id = secrets.token_hex(12)  # the real ids are 24 hex chars too
    owner = await Client(urls[0], "sender").connect(token="bare")
    await owner.ok("project:join", {"id": project_id})
    return owner, project_id, [(urls[i % len(urls)], "bare", secrets.token_hex(12))
                               for i in range(n_clients)]


async def _send_round(sender: Client, project_id: str, phase: str, messages: int,
                      args, pad: str, window: Window, send=None) -> tuple[float, int]:
    """Send ``messages`` broadcasts (or what ``send(data)`` sends), paced by ``window``
    (delivered) or by acks."""
    by_ack = args.pace == "acked"
    sem = asyncio.Semaphore(args.window) if by_ack else window.sem
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        refused = True
        try:
            data = {"t": now(), "p": phase, "s": i, "x": pad}
            if send is not None:
                ack = await send(data)
            else:
                ack = await sender.sio.call("project:broadcast", {
                    "id": project_id, "event": "cursor", "data": data}, timeout=args.timeout)
            refused = not ack.get("ok")
            if refused:
                errors += 1
                if errors == 1:
                    print(f"  ! broadcast refused: {ack}", file=sys.stderr)
        finally:
            if by_ack or refused:
                sem.release()  # a refused message is never delivered: free its slot

    tasks = []
    t0 = now()
    for i in range(messages):
        try:
            await asyncio.wait_for(sem.acquire(), args.timeout)
        except TimeoutError:
            print(f"  ! {phase}: message {i - args.window} never reached every receiver; "
                  f"round aborted", file=sys.stderr)
            break
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return t0, errors


@contextlib.contextmanager
def py_spy(inst: ServerInstance, out_dir: Path, n: int):
    """Sample ``inst`` with py-spy (folded stacks) while the block runs."""
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not exe:
        raise SystemExit("--py-spy needs py-spy: pip install py-spy (or set PY_SPY=/path)")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{inst.name}-{n}inst.folded"
    # --nonblocking: sample without pausing the server, so it is not slowed down.
    proc = subprocess.Popen([exe, "record", "--pid", str(inst.pid), "--rate", "250",
                             "--nonblocking", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attach before the measured rounds start
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode not in (0, -signal.SIGINT) and not out.exists():
            print(f"  ! py-spy failed on {inst.name}: {err.decode(errors='replace')[-500:]}",
                  file=sys.stderr)
        else:
            print(f"  py-spy profile of {inst.name}: {out}", file=sys.stderr)


class Run:
    """One deployment with its sender and receivers, measured round by round."""

    def __init__(self, kind: str, dep: Deployment, args):
        self.kind = kind
        self.dep = dep
        self.args = args
        self.result = RunResult(kind)
        self.pad = "x" * args.payload_bytes
        self.sender: Client | None = None
        self.pool = None
        self.send = None  # None: project:broadcast; a subclass may send something else

    async def start(self) -> None:
        setup = _setup_bare if self.kind == "bare" else _setup_collab
        self.sender, self.project_id, specs = await setup(self.dep.urls, self.args.clients)
        self.pool = (LocalPool(specs, self.project_id) if self.args.procs == 0
                     else ProcPool(specs, self.project_id, self.args.procs))
        await self.pool.start()

    async def _round(self, phase: str, messages: int):
        window = Window(self.args.window, self.pool.parts)
        self.pool.on_delivered = window.delivered
        waiting = await self.pool.arm(phase, messages, timeout=self.args.timeout)
        t0, errors = await _send_round(self.sender, self.project_id, phase, messages, self.args,
                                       self.pad, window, self.send)
        return t0, errors, await waiting

    async def warm_up(self) -> None:
        await self._round("warmup", self.args.warmup)

    async def measure(self, r: int) -> None:
        res, dep = self.result, self.dep
        before = dep.server_cpu(), dep.redis_cpu(), time.process_time(), machine_cpu()
        t0, errors, parts = await self._round(f"r{r}", self.args.messages)
        after = dep.server_cpu(), dep.redis_cpu(), time.process_time(), machine_cpu()
        got = sum(part["count"] for part in parts)
        want = sum(part["expected"] for part in parts)
        last = max((part["last"] for part in parts if part["count"]), default=t0)
        span = max(last - t0, 1e-9)
        res.rates.append(got / span)
        lat = array("d")
        for part in parts:
            lat.frombytes(part["lat"])
        res.latencies.extend(lat)
        res.round_p99.append(_quantile(lat, 0.99))
        res.delivered += got
        res.expected += want
        res.errors += errors
        res.wall += span
        res.server_cpu += after[0] - before[0]
        res.redis_cpu += after[1] - before[1]
        res.client_cpu += after[2] - before[2] + sum(part["cpu"] for part in parts)
        res.machine_cpu += after[3] - before[3]
        if got < want:
            print(f"  ! {self.kind} round {r}: {want - got} of {want} deliveries missing "
                  f"after {self.args.timeout}s", file=sys.stderr)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.sender is not None:
            await self.sender.close()


class RowUpdateRun(Run):
    """fanout's collab run, but every message is a row:update (pushed as row:updated)."""

    async def start(self) -> None:
        urls = self.dep.urls
        self.sender, self.project_id, specs = await _setup_collab(urls, self.args.clients)
        table = await self.sender.ok("table:create", {
            "projectId": self.project_id, "name": "fan", "columns": [
                {"name": "t", "type": "number"}, {"name": "p", "type": "text"},
                {"name": "s", "type": "number"}, {"name": "x", "type": "text"}]})
        rows = asyncio.Queue()
        for _ in range(self.args.window):  # one row per message in flight: no version races
            row = await self.sender.ok("row:add", {"tableId": table["id"], "values": {}})
            rows.put_nowait((row["id"], row["version"]))

        async def send(data: dict) -> dict:
            row_id, version = await rows.get()
            ack = await self.sender.sio.call("row:update", {
                "tableId": table["id"], "rowId": row_id, "version": version, "values": data},
                timeout=self.args.timeout)
            rows.put_nowait((row_id, ack["data"]["version"] if ack.get("ok") else version))
            return ack

        self.send = send
        self.pool = (LocalPool(specs, self.project_id) if self.args.procs == 0
                     else ProcPool(specs, self.project_id, self.args.procs))
        await self.pool.start()


async def run_scenario(n: int, tmp: Path, args) -> dict[str, RunResult]:
    """Both servers up side by side; their measured rounds alternate (bare, collab,
    collab, bare, ...) so that load from elsewhere on the machine hits both alike."""
    kinds = ("bare", "collab")
    with contextlib.ExitStack() as stack:
        try:
            deps = {kind: stack.enter_context(deploy(kind, n, tmp / kind, {})) for kind in kinds}
            runs = {kind: Run(kind, deps[kind], args) for kind in kinds}
            try:
                for run in runs.values():
                    await run.start()
                for run in runs.values():
                    await run.warm_up()
                with contextlib.ExitStack() as profiling:
                    if args.py_spy:
                        for kind in kinds:
                            for inst in deps[kind].instances:
                                profiling.enter_context(py_spy(inst, Path(args.py_spy), n))
                    for r in range(args.rounds):
                        for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                            await runs[kind].measure(r)
            finally:
                for run in runs.values():
                    await run.close()
        except BaseException:
            for log in sorted(tmp.glob("*/logs/*.log")):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                print(f"----- {log.name} -----\n{tail}", file=sys.stderr)
            raise
        return {kind: run.result for kind, run in runs.items()}


async def sequencing_cost(n: int, tmp: Path, args) -> dict[str, RunResult]:
    """Issue 13's cost: the same row:update fan-out (pushed as row:updated, a sequenced
    room push) with SEQUENCE_PUSHES off and on, rounds alternating."""
    kinds = {"unseq": {"SEQUENCE_PUSHES": "0"}, "seq": {"SEQUENCE_PUSHES": "1"}}
    with contextlib.ExitStack() as stack:
        deps = {k: stack.enter_context(deploy("collab", n, tmp / k, env))
                for k, env in kinds.items()}
        return await alternate({k: RowUpdateRun(k, deps[k], args) for k in kinds}, args.rounds)


async def alternate(runs: dict[str, Run], rounds: int) -> dict[str, RunResult]:
    """Start and warm up two runs, then measure their rounds alternately (a, b, b, a, …) so
    that load from elsewhere on the machine falls on both alike; close both."""
    first, second = list(runs)
    try:
        for run in runs.values():
            await run.start()
        for run in runs.values():
            await run.warm_up()
        for r in range(rounds):
            for k in ((first, second) if r % 2 == 0 else (second, first)):
                await runs[k].measure(r)
    finally:
        for run in runs.values():
            await run.close()
    return {k: run.result for k, run in runs.items()}


# -- reporting --------------------------------------------------------------------------


def _pct_of_wall(cpu: float, res: RunResult) -> str:
    return f"{cpu / res.wall * 100:.0f}%" if res.wall else "-"


def _row(label: str, res: RunResult) -> str:
    return (f"  {label:<7}{res.rate:>10,.0f}{res.pct(0.5) * 1e3:>9.1f}{res.pct(0.99) * 1e3:>9.1f}"
            f"{res.cpu_per_delivery_us:>11.1f}{_pct_of_wall(res.server_cpu, res):>9}"
            f"{_pct_of_wall(res.client_cpu, res):>9}{_pct_of_wall(res.other_cpu, res):>9}"
            f"{res.expected - res.delivered:>7}{res.errors:>7}")


def report(name: str, bare: RunResult, collab: RunResult, *, labels=("bare", "collab"),
           target_rate: float = TARGET_RATE, target_p99: float | None = TARGET_P99) -> bool:
    """``bare`` is the baseline, ``collab`` the one measured against it (``labels``)."""
    # Targets compare round i of collab with round i of bare (run back to back), so a
    # burst of load from elsewhere on the machine skews one pair, not the verdict.
    rate_ratio = _paired(collab.rates, bare.rates)
    p99_ratio = _paired(collab.round_p99, bare.round_p99)
    cpu_ratio = collab.cpu_per_delivery_us / bare.cpu_per_delivery_us
    print(f"\n{name}")
    print(f"  {'server':<7}{'deliv/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'srv µs/dl':>11}"
          f"{'srv CPU':>9}{'cli CPU':>9}{'other':>9}{'lost':>7}{'errors':>7}")
    print(_row(labels[0], bare))
    print(_row(labels[1], collab))
    print(f"  {'ratio':<7}{rate_ratio:>10.2f}{collab.pct(0.5) / bare.pct(0.5):>8.2f}x"
          f"{p99_ratio:>8.2f}x{cpu_ratio:>10.2f}x")
    print(f"  ratio = median over rounds of {labels[1]}/{labels[0]}, each pair run back to back")
    print("  per round deliv/s: " + "; ".join(
        f"{k} " + " ".join(f"{x:,.0f}" for x in r.rates) for k, r in zip(labels, (bare, collab))))
    print("  per round p99 ms:  " + "; ".join(
        f"{k} " + " ".join(f"{x * 1e3:.0f}" for x in r.round_p99)
        for k, r in zip(labels, (bare, collab))))
    if bare.redis_cpu or collab.redis_cpu:
        per = [r.redis_cpu / r.delivered * 1e6 if r.delivered else 0.0 for r in (bare, collab)]
        print(f"  redis-server CPU per delivery: {labels[0]} {per[0]:.1f} µs, "
              f"{labels[1]} {per[1]:.1f} µs")
    busy = max(bare.other_cpu / bare.wall, collab.other_cpu / collab.wall) if bare.wall else 0
    if busy > 0.2:
        print(f"  note: other processes used up to {busy:.0%} of a core during the rounds; "
              f"deliv/s and latency are noisy, srv µs/dl much less so")
    ok_rate = rate_ratio >= target_rate
    ok_p99 = target_p99 is None or p99_ratio <= target_p99
    complete = (bare.delivered == bare.expected and collab.delivered == collab.expected
                and not bare.errors and not collab.errors)
    print(f"  target deliveries/s >= {target_rate:.0%} of {labels[0]}: {rate_ratio:.0%}  "
          f"{'PASS' if ok_rate else 'FAIL'}")
    if target_p99 is not None:
        print(f"  target p99 <= {target_p99}x {labels[0]}: {p99_ratio:.2f}x  "
              f"{'PASS' if ok_p99 else 'FAIL'}")
    if not complete:
        print("  FAIL: deliveries were lost or broadcasts refused (see above)")
    return ok_rate and ok_p99 and complete


SCENARIOS = {"single": ("single instance", 1), "redis": ("2 instances + Redis", 2)}


async def amain(args) -> int:
    cores = os.cpu_count() or 1
    print(f"fan-out: {args.clients} receivers + 1 sender in one room, {args.messages} messages "
          f"x {args.rounds} rounds (after {args.warmup} warm-up), payload {args.payload_bytes} B, "
          f"sender window {args.window} ({args.pace}), websocket transport")
    where = "in the bench process" if args.procs == 0 else f"{args.procs} child processes"
    print(f"receivers: {where}"
          f"; machine: {cores} cores; clock: perf_counter (CLOCK_MONOTONIC)")
    print("collab instances: ENV=test, SQLite, LOG_LEVEL=INFO (one JSON line per event, as in "
          "production), BROADCAST_RATE/BURST raised to 1e6 so the per-socket limit (default "
          "100/s, burst 200) never refuses; the bucket still runs per message")
    print("columns: deliv/s = deliveries / (first send -> last arrival), median of rounds; "
          "p50/p99 over every delivery; srv µs/dl = server processes' CPU per delivery; "
          "srv/cli CPU = CPU time / wall time of the measured rounds (100% = one core); "
          "other = CPU used meanwhile by processes outside the benchmark")
    passed = True
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmpname:
        tmp = Path(tmpname)
        for key in args.scenario:
            name, n = SCENARIOS[key]
            if args.sequencing:
                results = await sequencing_cost(n, tmp / key, args)
                passed &= report(f"{name}: row:updated to {args.clients} receivers, "
                                 "sequencing off vs on", results["unseq"], results["seq"],
                                 labels=("unseq", "seq"), target_rate=TARGET_SEQ_RATE,
                                 target_p99=None)
                continue
            results = await run_scenario(n, tmp / key, args)
            passed &= report(f"{name}: {args.clients} receivers"
                             + (f" split over {n} instances, sender on the first" if n > 1 else ""),
                             results["bare"], results["collab"])
    print(f"\noverall: {'PASS' if passed else 'FAIL'}")
    if args.quick:
        print("(--quick: a smoke test; rounds this small are mostly noise, judge nothing by them)")
    return 0 if passed else 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=100, help="receiving clients (default 100)")
    p.add_argument("--messages", type=int, default=200, help="messages per round (default 200)")
    p.add_argument("--rounds", type=int, default=5,
                   help="measured rounds per server, alternating bare/collab (default 5)")
    p.add_argument("--warmup", type=int, default=50, help="warm-up messages (default 50)")
    p.add_argument("--pace", choices=("delivered", "acked"), default="delivered",
                   help="delivered: at most --window messages not yet received by every "
                        "receiver (default); acked: at most --window awaiting their ack")
    p.add_argument("--window", type=int, default=4, help="messages in flight (default 4)")
    p.add_argument("--payload-bytes", type=int, default=64, help="padding in data (default 64)")
    p.add_argument("--procs", type=int, default=2,
                   help="receiver child processes; 0 = in the bench process (default 2)")
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    p.add_argument("--timeout", type=float, default=60.0, help="per round, seconds")
    p.add_argument("--py-spy", metavar="DIR",
                   help="sample every instance with py-spy during the measured rounds; "
                        "folded stacks go to DIR (summarize: python -m bench.profile DIR/*)")
    p.add_argument("--sequencing", action="store_true",
                   help="measure what numbering and keeping room pushes costs (issue 13): "
                        "row:updated fan-out with SEQUENCE_PUSHES=0 against =1")
    p.add_argument("--quick", action="store_true",
                   help="tiny run: 10 clients x 20 messages, 1 round")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.messages, args.rounds, args.warmup = 10, 20, 1, 5
    args.scenario = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
