"""Summarize py-spy folded stacks (``py-spy record --format raw``) of a server instance.

    python -m bench.profile /tmp/prof/collab0-1inst.folded [/tmp/prof/bare0-1inst.folded ...]

For each file: busy vs idle samples; where the busy time goes by library (self time of
the innermost frame); how the per-event dispatch (``Realtime.dispatch`` in this server,
the ``broadcast`` handler in bench/bare_server.py) splits into the Socket.IO emit and our
own steps (validation, logging, metrics, json_size, rate limit, room check); and the
heaviest frames of our own code, inclusive. ``bench/fanout.py --py-spy DIR`` writes such
files for every instance during the measured rounds.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
IDLE_LEAVES = ("select (selectors.py", "EpollSelector.select (selectors.py")

LIBRARIES = [  # (label, substring of the frame's file), first match wins
    ("our code (server/, handlers/, store/)", ("server/", "handlers/", "store/")),
    ("bench bare server", ("bench/",)),
    ("python-engineio", ("engineio/",)),
    ("python-socketio", ("socketio/",)),
    ("aiohttp (websocket, http)", ("aiohttp/", "multidict/", "yarl/")),
    ("asyncio event loop", ("asyncio/",)),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("pydantic", ("pydantic",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("redis-py", ("redis/",)),
    ("sqlite3", ("sqlite3/",)),
]

# Steps inside one event's dispatch: the first frame below the dispatch root matching one
# of these decides where a sample goes.
STEPS = [
    ("Socket.IO emit to the room (fan-out)",
     re.compile(r"^(AsyncServer|AsyncManager|AsyncPubSubManager|AsyncRedisManager)\.emit ")),
    ("pydantic model_validate", re.compile(r"model_validate|pydantic")),
    ("logging (event line)", re.compile(r"\((logging/|server/logs\.py)")),
    ("metrics (prometheus)", re.compile(r"\(prometheus_client/")),
    ("json_size (json.dumps of data)", re.compile(r"^json_size \(")),
    ("rate limit (TokenBucket)", re.compile(r"TokenBucket")),
    ("room check (in_room)", re.compile(r"in_room \(")),
    ("ack envelope / error mapping", re.compile(r"to_dict|bad_payload")),
]
DISPATCH_ROOT = re.compile(r"^(Realtime\.dispatch \(server/realtime\.py"
                           r"|(create_app\.<locals>\.)?broadcast \(bench/bare_server\.py)")


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def library(frame: str) -> str:
    m = FRAME.match(frame)
    where = m.group("file") if m else frame
    for label, needles in LIBRARIES:
        if any(n in where for n in needles):
            return label
    return "other (C builtins, stdlib)"


def strip_line(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def summarize(path: Path, top: int = 12) -> str:
    stacks = parse(path)
    total = sum(c for _, c in stacks)
    idle = sum(c for frames, c in stacks if frames[-1].startswith(IDLE_LEAVES))
    busy = total - idle
    out = [f"== {path.name}: {total} samples, {busy} busy ({busy / max(total, 1):.0%}), "
           f"{idle} idle in select()"]
    if not busy:
        return "\n".join(out)

    by_lib: Counter = Counter()
    ours: Counter = Counter()
    steps: Counter = Counter()
    dispatch_total = 0
    for frames, c in stacks:
        if frames[-1].startswith(IDLE_LEAVES):
            continue
        by_lib[library(frames[-1])] += c
        seen = set()
        for f in frames:
            if any(p in f for p in ("(server/", "(handlers/", "(store/", "(bench/")):
                key = strip_line(f)
                if key not in seen:
                    seen.add(key)
                    ours[key] += c
        root = next((i for i, f in enumerate(frames) if DISPATCH_ROOT.match(f)), None)
        if root is None:
            continue
        dispatch_total += c
        label = "the handler/dispatcher itself"
        for f in frames[root + 1:]:
            hit = next((name for name, rx in STEPS if rx.search(f)), None)
            if hit:
                label = hit
                break
        steps[label] += c

    def pct(n: int) -> str:
        return f"{n / busy * 100:5.1f}%"

    out.append("  busy time by library (innermost frame):")
    out += [f"    {pct(n)}  {label}" for label, n in by_lib.most_common()]
    out.append(f"  per-event dispatch, inclusive: {pct(dispatch_total)} of busy time")
    out += [f"    {pct(n)}  {label}" for label, n in steps.most_common()]
    out.append(f"  heaviest frames of our code, inclusive (top {top}):")
    out += [f"    {pct(n)}  {frame}" for frame, n in ours.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        print(summarize(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
