"""Shared argument parsing for the market data commands: clear errors for bad arguments."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from django.core.management.base import CommandError

from marketdata.models import Stock
from marketdata.selectors import get_stock
from marketdata.timeframes import Timeframe


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time (UTC when no offset is given)."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise CommandError(f"{option}: cannot parse {value!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).to_pydatetime()


def timeframe_arg(value: str) -> str:
    if value not in Timeframe.values:
        raise CommandError(
            f"--timeframe: unknown timeframe {value!r}; use one of {', '.join(Timeframe.values)}"
        )
    return value


def stock_arg(symbol: str) -> Stock:
    try:
        return get_stock(symbol)
    except Stock.DoesNotExist as exc:
        raise CommandError(f"{exc}; add it with: manage.py stocks add {symbol.upper()}") from None
