"""The provider interface: bars for a symbol, timeframe and range; the latest quote.

Every provider returns bars as a DataFrame indexed by UTC open times (named
``timestamp``) with columns open, high, low, close (exact Decimals or float64) and
volume, oldest first, closed bars only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pandas as pd

from marketdata.validation import BAR_COLUMNS


class ProviderError(Exception):
    """A provider could not deliver; the message is one line and names what and where."""


class UnknownSymbol(ProviderError):
    pass


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    timestamp: datetime
    source: str


def empty_bars() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("us")
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in BAR_COLUMNS}, index=index)


def utc(moment: datetime | str) -> pd.Timestamp:
    """A datetime or ISO string as a UTC Timestamp (naive values are taken as UTC)."""
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def clip_range(frame: pd.DataFrame, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame.index >= utc(start)]
    if end is not None:
        frame = frame[frame.index <= utc(end)]
    return frame


class Provider(ABC):
    name: str = "provider"
    #: API credits one bars request costs (0 = free); fetch_bars shows it.
    credits_per_request: int = 0

    @abstractmethod
    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Closed bars of ``symbol`` with open time in [start, end] (None = unbounded)."""

    @abstractmethod
    def latest_quote(self, symbol: str) -> Quote:
        """The latest price of ``symbol``."""
