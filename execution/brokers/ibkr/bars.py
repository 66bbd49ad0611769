"""IB's historical bars in the project's terms: bar sizes, request durations, bar keys.

Bars are keyed as everywhere in the project (:mod:`marketdata.bartime`): an intraday bar
by its open time in UTC on the XNYS session grid (09:30, 09:35 ... New York), a daily bar
by its session date at 00:00 UTC. IB's intraday bars start at their open too (with
``formatDate=2`` as UTC datetimes), and its 1, 5, 15 and 30 minute bars fall on the same
grid, since each divides the half hour the session opens on. IB's hour bars do not: they
start on the clock hour (its first regular-hours hour bar is 09:30-10:00), and IB has no
45-minute bars; those timeframes are built from IB's 15- and 30-minute bars with
:func:`marketdata.resample.resample_bars`, which buckets from the session open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pandas as pd

from marketdata.bartime import bar_end
from marketdata.feeds.base import FeedError
from marketdata.resample import resample_bars

COLUMNS = ["open", "high", "low", "close", "volume"]

#: Our timeframe -> IB's ``barSizeSetting``, for the sizes IB delivers on our grid.
BAR_SIZES = {"1min": "1 min", "5min": "5 mins", "15min": "15 mins", "30min": "30 mins", "1day": "1 day"}
#: Timeframes built from a shorter IB bar (see the module docstring).
BUILT_FROM = {"45min": "15min", "1h": "30min", "2h": "30min", "4h": "30min"}

MAX_SECONDS = 86_400  # IB's "S" durations go up to a day
DAYS_PER_YEAR = 365


def source_timeframe(timeframe: str) -> str:
    """The timeframe of the IB bars ``timeframe`` is made of, or :class:`FeedError`."""
    if timeframe in BAR_SIZES:
        return timeframe
    if timeframe in BUILT_FROM:
        return BUILT_FROM[timeframe]
    supported = ", ".join([*BAR_SIZES, *BUILT_FROM])
    raise FeedError(f"IB bar feed: no {timeframe} bars (it feeds {supported})")


def bar_size(timeframe: str) -> str:
    """IB's ``barSizeSetting`` for the bars ``timeframe`` is made of."""
    return BAR_SIZES[source_timeframe(timeframe)]


def duration(span: pd.Timedelta, timeframe: str, minimum_days: int = 0) -> str:
    """IB's ``durationStr`` covering ``span`` back from the request's end (rounded up)."""
    seconds = max(math.ceil(span.total_seconds()), 60)
    days = max(math.ceil(seconds / 86_400), minimum_days, 1)
    if timeframe != "1day" and seconds <= MAX_SECONDS and not minimum_days:
        return f"{seconds} S"
    if days <= DAYS_PER_YEAR:
        return f"{days} D"
    return f"{math.ceil(days / DAYS_PER_YEAR)} Y"


def bar_key(value: date | datetime) -> pd.Timestamp:
    """IB's bar date as our key: a date (daily bars) is the session at 00:00 UTC."""
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
        return (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("us")
    return pd.Timestamp(value).tz_localize("UTC").as_unit("us")


def bar_row(bar: Any) -> tuple[float, float, float, float, float]:
    return (float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume))


def frame_of(
    rows: dict[pd.Timestamp, tuple[float, ...]], times: Iterable[pd.Timestamp] | None = None
) -> pd.DataFrame:
    """Bars as the project's feeds deliver them: float64 OHLCV, UTC ``timestamp`` index,
    oldest first (only ``times`` when given)."""
    keys = sorted(rows) if times is None else [t for t in times if t in rows]
    index = pd.DatetimeIndex(keys, tz="UTC", name="timestamp").as_unit("us")
    return pd.DataFrame([rows[k] for k in keys], index=index, columns=COLUMNS, dtype="float64")


def build(source: pd.DataFrame, source_tf: str, timeframe: str) -> pd.DataFrame:
    """``timeframe`` bars from closed ``source_tf`` bars: only buckets whose every source
    bar is closed (the bucket ends no later than the newest closed source bar)."""
    if timeframe == source_tf or source.empty:
        return source
    built = resample_bars(source, source_tf, timeframe)
    done_through = bar_end(source.index[-1], source_tf)
    complete = [bar_end(t, timeframe) <= done_through for t in built.index]
    return built[complete].astype("float64")
