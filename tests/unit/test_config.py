"""Configuration is validated at start, with a message naming each wrong variable."""
from __future__ import annotations

import subprocess
import sys

import pytest

from services.config import ConfigError, Settings, resolve_jwt_secret


def test_defaults_are_the_embedded_dev_setup():
    s = Settings.from_env({})
    assert s.env == "dev" and s.redis_url is None and s.mongo_url is None
    assert s.access_token_minutes == 30 and s.refresh_token_days == 7
    assert s.lock_edit_timeout_s == 900 and s.lock_cooldown_s == 15
    assert s.guest_imports == 2 and s.guest_messages == 20


def test_production_without_jwt_secret_refuses():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"ENV": "production"})
    assert any("JWT_SECRET is required" in p for p in info.value.problems)


def test_every_wrong_value_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PORT": "eighty", "ACCESS_TOKEN_MINUTES": "-1", "ENV": "staging",
                           "REDIS_URL": "localhost:6379", "TRUSTED_PROXIES": "10.0.0.0/8,proxy",
                           "JWT_SECRET": "short"})
    text = "\n".join(info.value.problems)
    for needle in ("PORT='eighty'", "ACCESS_TOKEN_MINUTES", "ENV='staging'", "REDIS_URL",
                   "TRUSTED_PROXIES: 'proxy'", "at least 32"):
        assert needle in text


def test_send_queue_must_hold_one_event():
    assert Settings.from_env({}).send_queue_max_bytes == 8192 * 1024
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SEND_QUEUE_MAX_KB": "512", "MAX_EVENT_KB": "1024"})
    assert any(p.startswith("SEND_QUEUE_MAX_KB must be at least MAX_EVENT_KB")
               for p in info.value.problems)


def test_cli_refuses_to_start_with_a_clear_message(tmp_path):
    out = subprocess.run([sys.executable, "-m", "server"], capture_output=True, text=True,
                         env={"ENV": "production", "DATA_DIR": str(tmp_path), "PATH": ""},
                         timeout=60)
    assert out.returncode == 2
    assert "JWT_SECRET is required when ENV=production" in out.stderr


def test_dev_secret_is_created_once_and_kept(tmp_path):
    s = Settings.from_env({"DATA_DIR": str(tmp_path)})
    first = resolve_jwt_secret(s)
    assert len(first) >= 32 and resolve_jwt_secret(s) == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0
