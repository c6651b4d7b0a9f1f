"""The JavaScript tests (tests/js/, Node's built-in runner) pass: the client library
server/web/client.js against a scripted socket.

Node and node_modules (``npm ci``, from package-lock.json) come from ``./dev setup``; missing
either is a failure, not a skip.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_node_tests_pass():
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed: run `./dev setup` (apt-get install -y nodejs npm)")
    if not (REPO / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("node_modules is missing: run `./dev setup` (or `npm ci --ignore-scripts`)")
    out = subprocess.run([node, "--test", "tests/js/"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"node --test tests/js/ failed:\n{out.stdout}\n{out.stderr}"
