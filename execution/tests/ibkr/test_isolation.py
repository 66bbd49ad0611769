"""ib_insync (or its fork ib_async) is imported by one module only: ib_compat."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
APPS = ("config", "marketdata", "strategies", "execution", "trading", "bench")
LIBRARIES = {"ib_insync", "ib_async"}
THE_ONE = Path("execution/brokers/ib_compat.py")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_ib_compat_imports_the_ib_library():
    importers = sorted(
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if imported_roots(path) & LIBRARIES
    )
    assert importers == [str(THE_ONE)]
