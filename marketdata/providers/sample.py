"""The bundled sample: real daily bars (SPX, IXIC) plus a seeded synthetic bar generator.

``synthetic_bars`` is public: demos and other apps' benchmarks use it to get realistic,
reproducible bars on the NYSE session grid without the network.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from marketdata.bartime import drop_unclosed, expected_times
from marketdata.money import as_decimal
from marketdata.providers.base import Quote, UnknownSymbol, clip_range, utc
from marketdata.providers.csv import CsvProvider
from marketdata.timeframes import is_intraday, offset

DEFAULT_START = pd.Timestamp("2024-01-02", tz="UTC")
NAMES = {"SPX": "S&P 500 index", "IXIC": "NASDAQ Composite index"}


def _times(n: int, timeframe: str, start: pd.Timestamp) -> pd.DatetimeIndex:
    if is_intraday(timeframe) or timeframe == "1day":
        per_day = (
            390 / (pd.Timedelta(offset(timeframe)).total_seconds() / 60) if is_intraday(timeframe) else 1
        )
        days = int(n / per_day * 7 / 5 * 1.1) + 10
        times = expected_times(start, start + pd.Timedelta(days=days), timeframe)
        if len(times) < n:
            raise ValueError(f"the trading calendar ends before {n} {timeframe} bars from {start:%Y-%m-%d}")
        return times[:n]
    return pd.date_range(start.normalize(), periods=n, freq=offset(timeframe)).as_unit("us")


def synthetic_bars(
    symbol: str,
    n: int,
    timeframe: str = "1min",
    seed: int = 0,
    start: datetime | pd.Timestamp = DEFAULT_START,
) -> pd.DataFrame:
    """``n`` reproducible bars of ``symbol`` on the NYSE session grid from ``start``.

    A geometric random walk (different per symbol and seed), prices rounded to 4
    decimals, valid OHLC (low <= open, close <= high), float64 columns open..volume,
    UTC DatetimeIndex named ``timestamp``.
    """
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tz is None else start.tz_convert("UTC")
    index = _times(n, timeframe, start).rename("timestamp")
    # One generator per series, so the first k bars do not depend on n (prefix-stable).
    key = zlib.crc32(symbol.upper().encode())
    r_close, r_open, r_high, r_low, r_volume = (np.random.default_rng([seed, key, i]) for i in range(5))
    minutes = pd.Timedelta(offset(timeframe)).total_seconds() / 60 if is_intraday(timeframe) else 390.0
    sigma = 0.0008 * np.sqrt(minutes)
    p0 = 20.0 + key % 400
    close = p0 * np.exp(np.cumsum(r_close.normal(0.0, sigma, n)))
    open_ = np.concatenate([[p0], close[:-1]]) * (1 + r_open.normal(0.0, sigma / 4, n))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * (1 + np.abs(r_high.normal(0.0, sigma / 2, n)))
    low = bottom * (1 - np.minimum(np.abs(r_low.normal(0.0, sigma / 2, n)), 0.5))
    volume = np.round(r_volume.lognormal(np.log(5000 * minutes**0.5), 0.6, n))
    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    ).round({"open": 4, "high": 4, "low": 4, "close": 4})
    return frame.astype("float64")


class SampleProvider(CsvProvider):
    """Daily bars from SAMPLE_DATA_DIR; any other symbol/timeframe is synthetic and seeded."""

    name = "sample"

    def __init__(self, directory: str | Path | None = None, seed: int = 0) -> None:
        super().__init__(directory or settings.SAMPLE_DATA_DIR)
        self.seed = seed

    def files(self) -> list[tuple[str, str, Path]]:
        """(symbol, timeframe, path) of every bundled ``SYMBOL_timeframe.csv``."""
        found = []
        for path in sorted(self.directory.glob("*_*.csv")):
            symbol, _, timeframe = path.stem.rpartition("_")
            found.append((symbol.upper(), timeframe, path))
        return found

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        if self.path(symbol, timeframe).is_file():
            return super().fetch_bars(symbol, timeframe, start, end)
        if not is_intraday(timeframe):
            raise UnknownSymbol(f"sample: no {timeframe} bars for {symbol} (files: {self.directory})")
        first = utc(start) if start is not None else DEFAULT_START
        last = utc(end) if end is not None else first + pd.Timedelta(days=7)
        # Always generate from the same anchor, so a bar has the same values whichever
        # range asks for it (incremental fetches re-fetch the last bar unchanged).
        anchor = min(DEFAULT_START, first)
        count = len(expected_times(anchor, last, timeframe))
        if count == 0 or last < first:
            return synthetic_bars(symbol, 1, timeframe, self.seed, anchor).iloc[:0]
        frame = synthetic_bars(symbol, count, timeframe, self.seed, anchor)
        return drop_unclosed(clip_range(frame, first, last), timeframe)

    def latest_quote(self, symbol: str) -> Quote:
        if self.path(symbol, "1day").is_file():
            return super().latest_quote(symbol)
        frame = synthetic_bars(symbol, 390, "1min", self.seed)
        return Quote(symbol.upper(), as_decimal(frame["close"].iloc[-1]), frame.index[-1], self.name)
