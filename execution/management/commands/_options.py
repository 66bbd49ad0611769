"""Parsing helpers of the backtest and sweep commands: grids and dates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError

from strategies.management.commands._options import parse_value


def parse_grid(items: list[str] | None) -> dict[str, list[Any]]:
    """``["fast=5,10,20", "slow=30:60:10"]`` -> lists of values (a:b:step is a range, b included)."""
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, spec = item.partition("=")
        if not sep or not key or not spec:
            raise CommandError(f"--grid {item!r}: expected NAME=V1,V2,... or NAME=START:STOP:STEP")
        if ":" in spec:
            try:
                start, stop, step = (float(x) for x in spec.split(":"))
            except ValueError:
                raise CommandError(f"--grid {item!r}: START:STOP:STEP must be numbers") from None
            if step <= 0 or stop < start:
                raise CommandError(f"--grid {item!r}: need STEP > 0 and STOP >= START")
            count = int(round((stop - start) / step)) + 1
            values = [start + i * step for i in range(count)]
            if all(float(v).is_integer() for v in (start, stop, step)):
                values = [int(v) for v in values]
            grid[key.strip()] = values
        else:
            grid[key.strip()] = [parse_value(v.strip()) for v in spec.split(",") if v.strip()]
    return grid


def parse_date(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"{option} {text!r}: expected a date like 2020-01-31 or 2020-01-31T14:30"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
