"""Reads of market data. Bars come back as a float64 DataFrame with a UTC index."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from marketdata.models import Bar, Stock

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
    indexed by a UTC DatetimeIndex named ``timestamp``, oldest first."""
    if isinstance(stock, str):
        stock = get_stock(stock)
    queryset = Bar.objects.filter(stock=stock, timeframe=timeframe)
    if start is not None:
        queryset = queryset.filter(timestamp__gte=start)
    if end is not None:
        queryset = queryset.filter(timestamp__lte=end)
    rows = list(queryset.order_by("timestamp").values_list("timestamp", *BAR_COLUMNS))
    frame = pd.DataFrame(rows, columns=["timestamp", *BAR_COLUMNS])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.set_index("timestamp")
    return frame.astype("float64")
