"""One ``python -m server`` process on the embedded store, for benchmarks: started on a free
port with a fresh data directory, waited for, and torn down with its data."""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and its children (e.g. a chat import's parser process)."""
    total = rss_kb(pid)
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                total += sum(rss_kb(int(child)) for child in fh.read().split())
    except OSError:
        pass
    return total


class PeakRss:
    """Samples the RSS of a process and its children every 50 ms while running
    (``with PeakRss(pid) as peak``)."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb, self._run = pid, 0, False
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while self._run:
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._run = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._run = False
        if self._thread:
            self._thread.join()


@contextlib.asynccontextmanager
async def running_server(module: str = "server", data_dir: Path | None = None,
                         root: Path | None = None,
                         **env_extra: str) -> AsyncIterator[tuple[subprocess.Popen, str]]:
    """``python -m <module>`` (this server, or e.g. ``bench.bare_server``) on a free port,
    its data in ``data_dir`` (a fresh one by default; removed at the end either way), run from
    ``root`` (this checkout by default; another one to measure an earlier version)."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="bench-server-"))
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "DATA_DIR": str(data_dir),
           "ENV": "test", "JWT_SECRET": secrets.token_hex(32), "BCRYPT_ROUNDS": "4",
           "SIGNUPS_PER_IP": "1000000", "GUESTS_PER_IP": "1000000",
           "ANON_SOCKETS_PER_IP": "1000000", "MAX_SOCKETS_PER_IP": "1000000",
           "MAX_SOCKETS_PER_USER": "1000000", "EVENT_RATE_READ": "1000000",
           "EVENT_RATE_WRITE": "1000000", "EVENT_RATE_HEAVY": "1000000",
           "LOG_LEVEL": "WARNING", "MAX_UPLOAD_MB": "2000", **env_extra}
    env.pop("REDIS_URL", None)
    env.pop("MONGO_URL", None)
    log = open(data_dir.with_suffix(".log"), "w+")
    proc = subprocess.Popen([sys.executable, "-m", module], env=env,
                            cwd=root or Path(__file__).resolve().parents[1],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        yield proc, f"http://127.0.0.1:{port}"
    except BaseException:
        log.flush()
        log.seek(0)
        tail = log.read()[-4000:]
        print(f"--- server log (exit code {proc.poll()}) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
        log.close()
        Path(log.name).unlink(missing_ok=True)
