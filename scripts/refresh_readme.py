"""Rewrite the README's event catalogue and configuration table from the code."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import handlers  # noqa: E402
from server.catalogue import render  # noqa: E402
from services.config import env_table  # noqa: E402


def replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README has no {name} markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = replace(text, "events", render(handlers.all_events()))
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {doc} |" for name, default, doc in env_table()]
    text = replace(text, "config", "\n".join(rows) + "\n")
    readme.write_text(text)


if __name__ == "__main__":
    main()
