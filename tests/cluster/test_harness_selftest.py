"""Self-tests for tests/cluster/harness.py.

These exercise the harness against stand-in processes (a tiny aiohttp app
instead of ``python -m server``), so the harness can be trusted on its own and
a failing cluster test points at the server, not at the plumbing.
"""

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

try:
    from tests.cluster import harness
except ImportError:  # run with plain `pytest` from a dir not on sys.path
    import harness


STAND_IN_APP = textwrap.dedent(
    """
    # Stand-in for the real server: just enough HTTP + websocket surface to
    # verify process management, env wiring and nginx proxying.
    import os
    import sys

    from aiohttp import WSMsgType, web

    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT"])
    name = sys.argv[2] if len(sys.argv) > 2 else os.environ["INSTANCE_ID"]

    ENV_KEYS = ("HOST", "PORT", "DATA_DIR", "INSTANCE_ID", "ENV",
                "JWT_SECRET", "REDIS_URL", "HARNESS_EXTRA")
    HEADER_KEYS = ("Host", "X-Real-IP", "X-Forwarded-For")

    async def health(request):
        return web.Response(text="ok")

    async def whoami(request):
        return web.json_response({
            "name": name,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "headers": {k: request.headers.get(k) for k in HEADER_KEYS},
            "env": {k: os.environ.get(k) for k in ENV_KEYS},
        })

    async def upload(request):
        body = await request.read()
        return web.json_response({"name": name, "size": len(body)})

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(f"hello from {name}")
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/health", health)
    app.router.add_get("/whoami", whoami)
    app.router.add_post("/upload", upload)
    app.router.add_get("/ws", ws_echo)
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"), port=port, print=None)
    """
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _descendants(root: int = None) -> set:
    """PIDs of all live (non-zombie) descendants of ``root`` (default: us)."""
    root = os.getpid() if root is None else root
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # comm (field 2) may contain spaces/parens; split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        state, ppid = fields[0], int(fields[1])
        if state != "Z":
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _assert_group_gone(pid: int) -> None:
    """The whole process group (e.g. nginx master + workers) has exited."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def _whoami(base_url: str) -> dict:
    status, body = harness.http_get(f"{base_url}/whoami")
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def stand_in_script(tmp_path):
    script = tmp_path / "stand_in_app.py"
    script.write_text(STAND_IN_APP)
    return script


@pytest.fixture
def backends(stand_in_script, tmp_path):
    """Two stand-in backends, (name, port, ManagedProcess), torn down always."""
    procs = []
    try:
        for name in ("alpha", "beta"):
            port = harness.free_port()
            proc = harness.ManagedProcess(
                [sys.executable, str(stand_in_script), str(port), name],
                log_path=tmp_path / f"{name}.log",
                name=name,
            )
            procs.append((name, port, proc))
            proc.start()
        for _, port, proc in procs:
            harness.wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc, timeout=20)
        yield procs
    finally:
        for _, _, proc in procs:
            proc.stop(timeout=5)
        for _, _, proc in procs:
            if proc.pid is not None:
                _assert_group_gone(proc.pid)


@pytest.fixture
def nginx(backends):
    proxy = harness.Nginx([f"127.0.0.1:{port}" for _, port, _ in backends])
    try:
        proxy.start()
        yield proxy
    finally:
        pid = proxy.process.pid if proxy.process else None
        prefix = proxy.prefix
        proxy.stop()
        if pid is not None:
            _assert_group_gone(pid)  # includes the nobody-owned workers
        if prefix is not None and not harness._KEEP_TMP:
            assert not prefix.exists()


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


def test_redis_server_ping_set_get():
    server = harness.RedisServer()
    try:
        server.start()
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = server.client()
        try:
            assert client.ping() is True
            client.set("harness:key", "value")
            assert client.get("harness:key") == b"value"
        finally:
            client.close()
        pid, tmpdir = server.process.pid, server.tmpdir
    finally:
        server.stop()
    _assert_group_gone(pid)
    assert not harness._redis_ping(server.port)
    if not harness._KEEP_TMP:
        assert not tmpdir.exists()


def test_nginx_balances_across_backends_and_forwards_headers(nginx):
    seen = set()
    for _ in range(6):
        info = _whoami(nginx.url)
        seen.add(info["name"])
        assert info["headers"]["X-Real-IP"] == "127.0.0.1"
        assert info["headers"]["X-Forwarded-For"] == "127.0.0.1"
        # Port must survive proxying (engine.io's same-origin check).
        assert info["headers"]["Host"] == f"127.0.0.1:{nginx.port}"
    assert seen == {"alpha", "beta"}, nginx.access_log_tail()


def test_nginx_skips_killed_backend(nginx, backends):
    (dead_name, _, dead_proc), (live_name, _, _) = backends
    dead_proc.kill()
    assert not dead_proc.alive
    # Enough requests that round robin must try the dead upstream, both
    # before and after max_fails marks it down.
    for _ in range(8):
        assert _whoami(nginx.url)["name"] == live_name, nginx.error_log_tail()


def test_nginx_passes_large_request_body(nginx):
    # Larger than client_body_buffer_size, so nginx spools it to
    # client_body_temp_path: proves the workers (nobody, when we are root)
    # can write there and that client_max_body_size 0 lifts nginx's 1 MB cap.
    import urllib.request

    size = 3 * 1024 * 1024
    req = urllib.request.Request(f"{nginx.url}/upload", data=b"x" * size, method="POST")
    with harness._NO_PROXY_OPENER.open(req, timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["size"] == size


def test_nginx_websocket_upgrade(nginx):
    async def exchange():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{nginx.url}/ws") as ws:
                greeting = await ws.receive_str(timeout=5)
                await ws.send_str("ping through nginx")
                echo = await ws.receive_str(timeout=5)
                return greeting, echo

    greeting, echo = asyncio.run(asyncio.wait_for(exchange(), timeout=15))
    assert greeting in ("hello from alpha", "hello from beta")
    assert echo == "ping through nginx"
    # nginx writes the access-log line when the proxied connection ends, which may be just
    # after the client saw it close: wait for the line rather than read once.
    deadline = time.monotonic() + 10
    while '"GET /ws HTTP/1.1" 101' not in nginx.access_log_tail():
        assert time.monotonic() < deadline, nginx.access_log_tail()
        time.sleep(0.05)


def test_cluster_wires_env_and_survives_kill(stand_in_script):
    before = _descendants()
    cluster = harness.Cluster(
        n=2,
        extra_env={"HARNESS_EXTRA": "yes"},
        server_argv=[sys.executable, str(stand_in_script)],
    )
    try:
        assert cluster.url == cluster.nginx.url
        infos = {}
        for inst in cluster.instances:
            info = _whoami(inst.url)
            infos[info["name"]] = info
            assert info["cwd"] == str(harness.REPO_ROOT)
            env = info["env"]
            assert env["HOST"] == "127.0.0.1"
            assert env["PORT"] == str(inst.port)
            assert env["INSTANCE_ID"] == inst.name
            assert env["ENV"] == "test"
            assert env["DATA_DIR"] == str(cluster.data_dir)
            assert env["JWT_SECRET"] == cluster.jwt_secret
            assert len(cluster.jwt_secret) == 64
            assert env["REDIS_URL"] == cluster.redis.url
            assert env["HARNESS_EXTRA"] == "yes"
        assert set(infos) == {"inst0", "inst1"}

        old_pid = cluster.instances[0].pid
        cluster.kill(0)
        _assert_group_gone(old_pid)
        for _ in range(6):
            assert _whoami(cluster.url)["name"] == "inst1", cluster.logs()

        cluster.restart(0)
        assert cluster.instances[0].pid != old_pid
        assert _whoami(cluster.instances[0].url)["name"] == "inst0"
        assert "=== harness: starting" in cluster.instances[0].log_tail(200)
    finally:
        tmpdir = cluster.tmpdir
        cluster.close()
    assert _descendants() == before
    if not harness._KEEP_TMP:
        assert not tmpdir.exists()


def test_cluster_without_redis_or_nginx(stand_in_script, monkeypatch):
    # An inherited REDIS_URL must not leak into a "no redis" cluster.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with harness.Cluster(
        n=1, redis=False, nginx=False, server_argv=[sys.executable, str(stand_in_script)]
    ) as cluster:
        assert cluster.redis is None and cluster.nginx is None
        assert cluster.url == cluster.instances[0].url
        assert _whoami(cluster.url)["env"]["REDIS_URL"] is None


def test_failed_cluster_start_leaks_nothing(tmp_path):
    # inst0 crashes at startup while redis and inst1 (which never becomes
    # healthy) are running: the constructor must raise with the crash log and
    # kill everything else, including the hanging inst1.
    script = tmp_path / "flaky.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            if os.environ["INSTANCE_ID"] == "inst0":
                sys.exit("boom: simulated startup failure")
            time.sleep(600)
            """
        )
    )
    before = _descendants()
    with pytest.raises(harness.HarnessError) as excinfo:
        harness.Cluster(n=2, server_argv=[sys.executable, str(script)])
    assert "boom: simulated startup failure" in str(excinfo.value)
    assert _descendants() == before


def test_instance_early_exit_reports_log_tail(tmp_path):
    inst = harness.ServerInstance(
        "crashy",
        data_dir=tmp_path,
        jwt_secret="s",
        log_dir=tmp_path,
        argv=[sys.executable, "-c", "import sys; print('about to die'); sys.exit(3)"],
    )
    with pytest.raises(harness.HarnessError) as excinfo:
        inst.start(wait=True, timeout=20)
    assert "exited with code 3" in str(excinfo.value)
    assert "about to die" in str(excinfo.value)
    assert not inst.alive


def test_stop_escalates_to_sigkill(tmp_path):
    # A process that ignores SIGTERM must still be gone after stop().
    proc = harness.ManagedProcess(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n",
        ],
        log_path=tmp_path / "stubborn.log",
    )
    try:
        proc.start()
        # Wait for the handler to be installed, else SIGTERM kills it early.
        deadline = time.monotonic() + 10
        # Match a whole line: the harness' header line echoes argv (incl. 'ready').
        while "ready" not in proc.log_tail().splitlines():
            assert time.monotonic() < deadline, proc.log_tail()
            time.sleep(0.02)
        proc.stop(timeout=0.5)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
