"""A sharkd that misbehaves on cue, for the tests of crash recovery and of waiting requests.

It runs the real ``sharkd -`` and relays its JSON-RPC (the answers go straight from sharkd to
our caller), except that it
- dies at once, as a dissector crash kills sharkd, on a ``frame`` request for frame
  ``$FAULTY_SHARKD_CRASH_FRAME``;
- holds every ``load`` of a capture (not of a cut-out, ``cut-*``) until the file
  ``$FAULTY_SHARKD_HOLD`` exists, so a test can send requests while a session is certainly
  still loading.

``executable(tmp_path)`` writes a launcher to pass as the server's ``SHARKD``.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path


def executable(directory: Path) -> str:
    launcher = directory / "faulty-sharkd"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return str(launcher)


def main() -> None:
    crash = int(os.environ.get("FAULTY_SHARKD_CRASH_FRAME") or 0)
    hold = os.environ.get("FAULTY_SHARKD_HOLD")
    real = subprocess.Popen(["sharkd", "-"], stdin=subprocess.PIPE, stdout=sys.stdout,
                            stderr=subprocess.DEVNULL)
    assert real.stdin is not None
    for line in sys.stdin.buffer:
        request = json.loads(line)
        params = request.get("params") or {}
        if request.get("method") == "frame" and params.get("frame") == crash:
            real.kill()
            real.wait()
            os._exit(1)
        cut_out = os.path.basename(str(params.get("file"))).startswith("cut-")
        if request.get("method") == "load" and hold and not cut_out:
            while not os.path.exists(hold):
                time.sleep(0.01)
        real.stdin.write(line)
        real.stdin.flush()
    real.stdin.close()
    real.wait()


if __name__ == "__main__":
    main()
