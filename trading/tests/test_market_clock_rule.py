"""Time comes from the market clock: the engine, the feeds and the risk rules never read
the wall clock directly (so every live behaviour runs on a simulated clock)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
MODULES = [
    *sorted((BASE / "trading" / "engine").glob("*.py")),
    *sorted((BASE / "marketdata" / "feeds").glob("*.py")),
    BASE / "marketdata" / "live.py",
    BASE / "marketdata" / "sessions.py",
    BASE / "marketdata" / "bartime.py",
    BASE / "execution" / "risk.py",
    BASE / "execution" / "protections.py",
    BASE / "execution" / "brokers" / "ibkr" / "feed.py",
    BASE / "execution" / "brokers" / "ibkr" / "pacing.py",
]
WALL_CLOCK = {
    ("timezone", "now"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
}


def wall_clock_reads(path: Path) -> list[str]:
    where = path.relative_to(BASE) if path.is_relative_to(BASE) else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in WALL_CLOCK:
                found.append(f"{where}:{node.lineno} {name}.{node.func.attr}()")
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if p.exists()], ids=lambda p: str(p.relative_to(BASE)))
def test_no_wall_clock_reads(path):
    assert wall_clock_reads(path) == []


def test_the_rule_sees_a_wall_clock_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from django.utils import timezone\nstamp = timezone.now()\n")
    assert wall_clock_reads(sample) == ["sample.py:2 timezone.now()"]
