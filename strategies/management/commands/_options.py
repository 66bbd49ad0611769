"""Parsing helpers for command-line strategy parameters (check_strategy, and execution's
backtest and sweep commands)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError


def parse_value(text: str) -> Any:
    """A command-line value as JSON when it parses (numbers, true/false), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["fast=10", "slow=30"]`` -> ``{"fast": 10, "slow": 30}``."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        params[key.strip()] = parse_value(value.strip())
    return params
