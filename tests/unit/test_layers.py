"""The packages import one way — server → handlers → services → store — and ingest, the
parsers, imports none of them (the store keeps the ingest's packet row as it is). Read from
the source (every import, including those only made for type checking), so a new back-edge
fails here rather than in a review."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What each package may import from the project (itself always).
ALLOWED = {
    "server": {"handlers", "services", "store", "ingest"},
    "handlers": {"services", "store", "ingest"},
    "services": {"store", "ingest"},
    "store": {"ingest"},
    "ingest": set(),
}


def project_imports(path: Path) -> set[tuple[int, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED:
                found.add((node.lineno, top))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package):
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}/"
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {top}"
             for path in modules for line, top in sorted(project_imports(path))
             if top != package and top not in ALLOWED[package]]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_back_edge(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from server.app import create_app\nimport handlers.base\n")
    assert project_imports(module) == {(1, "server"), (2, "handlers")}
