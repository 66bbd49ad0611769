"""Reads of market data. Bars come back as a float64 DataFrame with a UTC index."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from django.db import connection

from marketdata.models import Bar, Stock
from marketdata.pgcopy import read_bars

BAR_COLUMNS = ["open", "high", "low", "close", "volume"]


def get_stock(symbol: str) -> Stock:
    """The active-or-not stock with this symbol (first by exchange); DoesNotExist names it."""
    stock = Stock.objects.filter(symbol=symbol.upper()).order_by("exchange").first()
    if stock is None:
        raise Stock.DoesNotExist(f"unknown symbol {symbol!r}")
    return stock


def bars_frame(
    stock: Stock | str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Bars of ``stock`` (open time in [start, end]) as float64 columns open..volume,
    indexed by a UTC DatetimeIndex (microseconds) named ``timestamp``, oldest first.

    One query either way: every column as one binary array parsed by numpy on PostgreSQL,
    ``values_list`` on SQLite.
    """
    if isinstance(stock, str):
        stock = get_stock(stock)
    if connection.vendor == "postgresql":
        return _pg_bars(stock.pk, timeframe, start, end)
    queryset = Bar.objects.filter(stock=stock, timeframe=timeframe)
    if start is not None:
        queryset = queryset.filter(timestamp__gte=start)
    if end is not None:
        queryset = queryset.filter(timestamp__lte=end)
    rows = list(queryset.order_by("timestamp").values_list("timestamp", *BAR_COLUMNS))
    frame = pd.DataFrame(rows, columns=["timestamp", *BAR_COLUMNS])
    index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), utc=True), name="timestamp")
    frame.index = index.as_unit("us")
    return frame.astype("float64")


def _pg_bars(stock_id: int, timeframe: str, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return read_bars(stock_id, timeframe, start, end)


def last_bar_time(stock: Stock, timeframe: str) -> datetime | None:
    """Open time of the newest stored bar (for incremental fetches)."""
    return (
        Bar.objects.filter(stock=stock, timeframe=timeframe)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
