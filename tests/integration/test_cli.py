"""``python -m server create-admin`` and ``events`` as an operator runs them."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.client import Client
from tests.conftest import RunningServer, make_settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60,
                          stdin=subprocess.DEVNULL)


async def test_create_admin_then_sign_in_as_admin(tmp_path):
    settings = make_settings(tmp_path)
    env = {"DATA_DIR": str(settings.data_dir), "ENV": "test", "BCRYPT_ROUNDS": "4",
           "ADMIN_PASSWORD": "admin password 1"}
    out = run_cli("create-admin", "root@example.com", env=env)
    assert out.returncode == 0 and "created admin root@example.com" in out.stdout, out.stderr
    again = run_cli("create-admin", "root@example.com", env=env)
    assert again.returncode == 0 and "now an admin" in again.stdout
    bad = run_cli("create-admin", "not-an-email", env=env)
    assert bad.returncode == 2 and "not a valid email" in bad.stderr

    srv = await RunningServer(settings).start()
    c = await Client(srv.url).connect()
    try:
        user = (await c.ok("auth:login", {"email": "root@example.com",
                                          "password": "admin password 1"}))["user"]
        assert user["role"] == "admin"
    finally:
        await c.close()
        await srv.stop()


def test_generated_password_is_printed_when_not_interactive(tmp_path):
    out = run_cli("create-admin", "gen@example.com",
                  env={"DATA_DIR": str(tmp_path), "BCRYPT_ROUNDS": "4", "ADMIN_PASSWORD": ""})
    assert out.returncode == 0 and "with password: " in out.stdout


def test_events_prints_the_catalogue():
    out = run_cli("events")
    assert out.returncode == 0
    assert "\n| event |" in out.stdout and "`project:broadcast`" in out.stdout
    assert "*(not numbered)*" in out.stdout  # the catalogue says which pushes carry no seq
