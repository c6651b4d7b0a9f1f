"""Process harness for multi-instance (cluster) tests.

Starts real processes -- redis-server, N copies of ``python -m server`` and an
nginx load balancer in front of them -- and guarantees they are all torn down
again. Everything is synchronous: tests drive it from fixtures and talk to the
processes over the network, so there is nothing to gain from asyncio here.

Deliberately free of pytest so it can also be used from a REPL or a script
when debugging a cluster by hand.

Typical use::

    with Cluster(n=2) as cluster:
        ...  # connect clients to cluster.url
        cluster.kill(0)  # simulate a crash of instance 0

Set ``HARNESS_KEEP_TMP=1`` to keep temp dirs (logs, nginx config, data dir)
after teardown for post-mortem inspection.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

LOCALHOST = "127.0.0.1"

_KEEP_TMP = os.environ.get("HARNESS_KEEP_TMP", "") not in ("", "0")


class HarnessError(RuntimeError):
    """A managed process failed to start or become ready."""


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def free_port() -> int:
    """Return a currently free loopback TCP port.

    There is an unavoidable window between closing this socket and the child
    binding the port, but the kernel hands out ephemeral ports in sequence,
    so a collision within a test run is very unlikely.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def _make_tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"cluster-{prefix}-"))


def _remove_tmpdir(path: Path | None) -> None:
    if path is not None and not _KEEP_TMP:
        shutil.rmtree(path, ignore_errors=True)


def _tail_file(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as fh:
            # Logs are small in tests; reading the whole file is simpler than
            # seeking backwards and is robust to partial utf-8 sequences.
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    return "\n".join(lines[-n:])


# urllib honours http_proxy/HTTP_PROXY; a proxy configured in the CI env would
# swallow requests to 127.0.0.1, so health checks use an opener without one.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` bypassing any proxy; return (status, body) even for 4xx/5xx."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for_http(
    url: str,
    *,
    proc: ManagedProcess | None = None,
    timeout: float = 20.0,
    expect_status: int = 200,
) -> None:
    """Poll ``url`` until it answers ``expect_status``.

    If ``proc`` is given and dies while we wait, fail immediately with its log
    tail rather than waiting out the whole timeout.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt made"
    while True:
        if proc is not None and not proc.alive:
            raise HarnessError(
                f"{proc.name} exited with code {proc.returncode} before "
                f"{url} became ready; log tail:\n{proc.log_tail(40)}"
            )
        try:
            status, _ = http_get(url, timeout=1.0)
            if status == expect_status:
                return
            last = f"HTTP {status}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        if time.monotonic() >= deadline:
            tail = f"; log tail:\n{proc.log_tail(40)}" if proc is not None else ""
            raise HarnessError(
                f"{url} not ready after {timeout}s (last: {last}){tail}"
            )
        time.sleep(0.05)


def wait_for_tcp(
    host: str,
    port: int,
    *,
    proc: ManagedProcess | None = None,
    timeout: float = 10.0,
) -> None:
    """Poll until ``host:port`` accepts TCP connections (see wait_for_http)."""
    deadline = time.monotonic() + timeout
    last = "no attempt made"
    while True:
        if proc is not None and not proc.alive:
            raise HarnessError(
                f"{proc.name} exited with code {proc.returncode} before "
                f"{host}:{port} accepted connections; log tail:\n"
                f"{proc.log_tail(40)}"
            )
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            last = repr(exc)
        if time.monotonic() >= deadline:
            raise HarnessError(
                f"{host}:{port} not accepting connections after {timeout}s "
                f"(last: {last})"
            )
        time.sleep(0.05)


# --------------------------------------------------------------------------
# generic child process
# --------------------------------------------------------------------------

# Safety net: if a test forgets to stop something (or the interpreter exits
# because of an unhandled error in a fixture), kill whatever is still running
# rather than leaving orphans bound to ports.
_LIVE: set[ManagedProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill()


class ManagedProcess:
    """A child process whose stdout+stderr go to a log file.

    Each child is started in its own session/process group so that teardown
    can also reach grandchildren (nginx workers, any helper the server forks)
    with ``killpg``; otherwise SIGKILLing nginx's master would orphan its
    workers, which keep the listening socket open.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self._proc: subprocess.Popen | None = None
        self._signalled = False

    def start(self) -> ManagedProcess:
        if self.alive:
            raise HarnessError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Append, so a restarted process keeps the previous run's log above it.
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== harness: starting {self.argv!r}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._signalled = False
        _LIVE.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _killpg(self, sig: int) -> None:
        # The group id equals the leader's pid (start_new_session); the group
        # can outlive the leader, so this is also used after the leader exits.
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it (a simulated crash)."""
        if self._proc is None:
            return
        self._killpg(signal.SIGKILL)
        self._proc.wait()
        _LIVE.discard(self)

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the leader once, without waiting.

        Only the leader is signalled so it can shut its own children down in
        order. Sending at most once matters: a second SIGTERM can interrupt
        an asyncio server's graceful-shutdown path with a spurious traceback.
        """
        if self._proc is None or self._signalled or self._proc.poll() is not None:
            return
        self._signalled = True
        try:
            self._proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """terminate() and wait up to ``timeout``; then SIGKILL the group.

        The final group SIGKILL sweeps up anything the leader left behind.
        """
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.terminate(sig)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._killpg(signal.SIGKILL)
        self._proc.wait()
        _LIVE.discard(self)

    def log_tail(self, n: int = 50) -> str:
        return _tail_file(self.log_path, n)

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"rc={self.returncode}"
        return f"<{type(self).__name__} {self.name} pid={self.pid} {state}>"


# --------------------------------------------------------------------------
# redis
# --------------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    # Raw RESP instead of redis-py keeps readiness checks dependency-free;
    # "-LOADING" (or any error) means not ready yet.
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway, non-persistent redis-server on a free loopback port."""

    def __init__(self, *, port: int | None = None, redis_bin: str | None = None) -> None:
        self.port = port or free_port()
        self.redis_bin = redis_bin or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.tmpdir: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.tmpdir = _make_tmpdir("redis")
        argv = [
            self.redis_bin,
            "--port", str(self.port),
            "--bind", LOCALHOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.tmpdir),
        ]
        self.process = ManagedProcess(
            argv, log_path=self.tmpdir / "redis.log", name=f"redis:{self.port}"
        )
        # Clean up on failure ourselves: the caller never receives an object
        # to stop when start() raises.
        try:
            self.process.start()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not _redis_ping(self.port):
            if not self.process.alive:
                raise HarnessError(
                    f"redis-server exited with code {self.process.returncode}; "
                    f"log tail:\n{self.process.log_tail(40)}"
                )
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"redis-server not answering PING after {timeout}s; log "
                    f"tail:\n{self.process.log_tail(40)}"
                )
            time.sleep(0.05)

    def client(self, **kwargs):
        """A sync redis-py client for this server (imported lazily)."""
        import redis

        return redis.Redis.from_url(self.url, **kwargs)

    def log_tail(self, n: int = 50) -> str:
        return self.process.log_tail(n) if self.process else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=5.0)
        _remove_tmpdir(self.tmpdir)
        self.tmpdir = None

    def __enter__(self) -> RedisServer:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# app server instance
# --------------------------------------------------------------------------


class ServerInstance:
    """One ``python -m server`` process listening on its own port.

    ``start(wait=False)`` + ``wait_ready()`` are split so a Cluster can spawn
    every instance first and only then wait, paying startup time once.
    The port is fixed at construction so ``start()`` after ``kill()`` brings
    the instance back where nginx expects it.
    """

    def __init__(
        self,
        name: str,
        *,
        data_dir: Path,
        jwt_secret: str,
        redis_url: str | None = None,
        extra_env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        log_dir: Path | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.data_dir = Path(data_dir)
        self._own_tmpdir: Path | None = None
        if log_dir is None:
            self._own_tmpdir = log_dir = _make_tmpdir(f"server-{name}")
        self.log_path = Path(log_dir) / f"{name}.log"
        # argv is overridable so the harness itself can be tested against a
        # stand-in app before (or independently of) the real server.
        self.argv = list(argv) if argv is not None else [sys.executable, "-m", "server"]

        env = dict(os.environ)
        # Unbuffered so log_tail() shows the last lines before a crash/kill.
        env["PYTHONUNBUFFERED"] = "1"
        env.update(
            HOST=LOCALHOST,
            PORT=str(self.port),
            DATA_DIR=str(self.data_dir),
            INSTANCE_ID=name,
            ENV="test",
            JWT_SECRET=jwt_secret,
            # Tests sign up many users from one address; the limits' own tests lower these.
            SIGNUPS_PER_IP="1000000", GUESTS_PER_IP="1000000", ANON_SOCKETS_PER_IP="1000000",
            MAX_SOCKETS_PER_IP="1000000", MAX_SOCKETS_PER_USER="1000000",
            EVENT_RATE_READ="1000000", EVENT_RATE_WRITE="1000000", EVENT_RATE_HEAVY="1000000",
        )
        # Drop an inherited REDIS_URL so "no redis" really means no redis.
        env.pop("REDIS_URL", None)
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)  # None lets callers unset a variable
            else:
                env[key] = str(value)
        self.env = env

        self.process = ManagedProcess(
            self.argv, log_path=self.log_path, env=env, cwd=REPO_ROOT, name=f"server:{name}"
        )

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, as used in nginx upstream blocks."""
        return f"{LOCALHOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def start(self, wait: bool = True, timeout: float = 20.0) -> ServerInstance:
        self.process.start()
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        wait_for_http(f"{self.url}/health", proc=self.process, timeout=timeout)

    def kill(self) -> None:
        self.process.kill()

    def stop(self, timeout: float = 10.0) -> None:
        self.process.stop(timeout=timeout)

    def log_tail(self, n: int = 50) -> str:
        return self.process.log_tail(n)

    def cleanup(self) -> None:
        """Stop and remove the log dir if this instance created it."""
        self.stop()
        _remove_tmpdir(self._own_tmpdir)
        self._own_tmpdir = None

    def __repr__(self) -> str:
        return f"<ServerInstance {self.name} {self.url} {self.process!r}>"


# --------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------

_NGINX_CONF = """\
# Generated by tests/cluster/harness.py -- every path lives under the prefix so
# the system nginx (/etc/nginx, /var/log/nginx, /run/nginx.pid) is untouched.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    log_format upstreamlog '$remote_addr "$request" $status '
                           'upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {prefix}/access.log upstreamlog;

    # Temp dirs are created by the master; when it runs as root it chowns them
    # to the worker user (nobody), which is why the prefix must be traversable.
    client_body_temp_path {prefix}/client_body_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    # Plain round robin, no ip_hash: clients use the websocket transport only,
    # so no sticky sessions are needed, and all test clients share one IP.
    upstream app {{
{servers}
    }}

    server {{
        listen {listen};

        # The app enforces its own upload limit and must be the one to reject.
        client_max_body_size 0;

        location / {{
            proxy_pass http://app;
            # The instances trust X-Forwarded-For from 127.0.0.2 only (TRUSTED_PROXIES):
            # nginx, not the tests, which connect from 127.0.0.1 like any other client.
            proxy_bind 127.0.0.2;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            # $http_host (not $host) keeps the port: engine.io's default
            # same-origin check compares Origin with scheme://Host.
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;

            # Long-lived websockets must not be cut by nginx's 60s default.
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;

            # A killed instance refuses connections instantly; retry the next
            # upstream so requests during failover still succeed.
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


class Nginx:
    """nginx load-balancing (round robin) over ``upstreams`` ("host:port")."""

    def __init__(
        self,
        upstreams: Iterable[str],
        *,
        port: int | None = None,
        nginx_bin: str | None = None,
    ) -> None:
        self.upstreams = list(upstreams)
        if not self.upstreams:
            raise ValueError("nginx needs at least one upstream")
        self.port = port or free_port()
        self.nginx_bin = nginx_bin or shutil.which("nginx") or "/usr/sbin/nginx"
        self.prefix: Path | None = None
        self.conf_path: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def render_config(self, prefix: Path) -> str:
        servers = "\n".join(
            f"        server {addr} max_fails=1 fail_timeout=2s;" for addr in self.upstreams
        )
        return _NGINX_CONF.format(
            prefix=prefix, servers=servers, listen=f"{LOCALHOST}:{self.port}"
        )

    def start(self, timeout: float = 10.0) -> Nginx:
        self.prefix = _make_tmpdir("nginx")
        # mkdtemp makes 0700 dirs; as root, nginx workers run as nobody and
        # must be able to reach the temp dirs below the prefix.
        self.prefix.chmod(0o755)
        self.conf_path = self.prefix / "nginx.conf"
        self.conf_path.write_text(self.render_config(self.prefix))
        argv = [
            self.nginx_bin,
            "-p", f"{self.prefix}/",
            "-c", str(self.conf_path),
            # -e: the error log nginx uses before it has read the config;
            # without it nginx would open /var/log/nginx/error.log.
            "-e", str(self.prefix / "error.log"),
            "-g", "daemon off;",
        ]
        self.process = ManagedProcess(
            argv, log_path=self.prefix / "stdout.log", name=f"nginx:{self.port}"
        )
        # As in RedisServer.start: a failed start must not leak the process.
        try:
            self.process.start()
            wait_for_tcp(LOCALHOST, self.port, proc=self.process, timeout=timeout)
        except HarnessError as exc:
            err = HarnessError(f"{exc}\nnginx error.log:\n{self.error_log_tail(40)}")
            self.stop()
            raise err from None
        except BaseException:
            self.stop()
            raise
        return self

    def error_log_tail(self, n: int = 50) -> str:
        return _tail_file(self.prefix / "error.log", n) if self.prefix else ""

    def access_log_tail(self, n: int = 50) -> str:
        return _tail_file(self.prefix / "access.log", n) if self.prefix else ""

    def log_tail(self, n: int = 50) -> str:
        return self.error_log_tail(n)

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM = fast shutdown. SIGQUIT (graceful) would wait for open
            # websockets, i.e. up to proxy_read_timeout.
            self.process.stop(timeout=5.0)
        _remove_tmpdir(self.prefix)
        self.prefix = None

    def __enter__(self) -> Nginx:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# cluster
# --------------------------------------------------------------------------


class Cluster:
    """redis + ``n`` server instances (shared DATA_DIR and JWT secret) + nginx.

    Everything is started in the constructor; if any part fails, whatever
    already started is torn down before the exception propagates, so a
    failing fixture never leaks processes.
    """

    def __init__(
        self,
        n: int = 2,
        redis: bool = True,
        nginx: bool = True,
        extra_env: Mapping[str, str | None] | None = None,
        *,
        server_argv: Sequence[str] | None = None,
        ready_timeout: float = 20.0,
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one instance")
        self.tmpdir = _make_tmpdir("cluster")
        self.data_dir = self.tmpdir / "data"
        self.data_dir.mkdir()
        self.log_dir = self.tmpdir / "logs"
        self.log_dir.mkdir()
        self.jwt_secret = secrets.token_hex(32)
        self.ready_timeout = ready_timeout
        self.redis: RedisServer | None = None
        self.nginx: Nginx | None = None
        self.instances: list[ServerInstance] = []
        self._closed = False
        try:
            if redis:
                self.redis = RedisServer().start()
            for i in range(n):
                self.instances.append(
                    ServerInstance(
                        f"inst{i}",
                        data_dir=self.data_dir,
                        jwt_secret=self.jwt_secret,
                        redis_url=self.redis.url if self.redis else None,
                        extra_env=extra_env,
                        log_dir=self.log_dir,
                        argv=server_argv,
                    )
                )
            # Spawn all, then wait: instances boot concurrently.
            for inst in self.instances:
                inst.start(wait=False)
            for inst in self.instances:
                inst.wait_ready(timeout=ready_timeout)
            if nginx:
                self.nginx = Nginx([inst.address for inst in self.instances]).start()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return self.nginx.url if self.nginx else self.instances[0].url

    def kill(self, i: int) -> None:
        """SIGKILL instance ``i`` (simulated crash; no graceful shutdown)."""
        self.instances[i].kill()

    def stop(self, i: int, timeout: float = 10.0) -> None:
        """Gracefully stop instance ``i`` (SIGTERM, SIGKILL after timeout)."""
        self.instances[i].stop(timeout=timeout)

    def restart(self, i: int, timeout: float | None = None) -> ServerInstance:
        """(Re)start instance ``i`` on its original port and wait for health."""
        inst = self.instances[i]
        if inst.alive:
            inst.stop()
        return inst.start(wait=True, timeout=timeout or self.ready_timeout)

    def logs(self, n: int = 40) -> str:
        """Log tails of every component, for printing when a test fails."""
        parts = [f"----- {inst.name} ({inst.url}) -----\n{inst.log_tail(n)}"
                 for inst in self.instances]
        if self.nginx is not None:
            parts.append(f"----- nginx error.log -----\n{self.nginx.error_log_tail(n)}")
        if self.redis is not None:
            parts.append(f"----- redis -----\n{self.redis.log_tail(n)}")
        return "\n".join(parts)

    def close(self) -> None:
        """Stop everything that was started and remove temp dirs. Idempotent.

        Order: nginx first, so clients get connection errors rather than being
        routed to half-stopped instances; then all instances, signalled up
        front so their graceful shutdowns overlap instead of each costing up
        to its timeout in turn; redis last, because instances may still talk
        to it while shutting down. Each step runs even if an earlier one
        failed, so one broken component cannot leak the others.
        """
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []

        def attempt(fn) -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        if self.nginx is not None:
            attempt(self.nginx.stop)
        for inst in self.instances:
            attempt(inst.process.terminate)
        for inst in self.instances:
            attempt(inst.stop)
        if self.redis is not None:
            attempt(self.redis.stop)
        _remove_tmpdir(self.tmpdir)
        if errors:
            raise errors[0]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
