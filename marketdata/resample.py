"""Resampling bars to a longer timeframe with correct OHLCV aggregation.

Intraday buckets are aligned to the NYSE session open (09:30 New York, so 1h bars are
09:30-10:30 like the exchange's and Twelve Data's); daily buckets are the New York date,
keyed at 00:00 UTC like every daily bar. open = first, high = max, low = min,
close = last, volume = sum; a bar never leaks into the next bucket.
"""

from __future__ import annotations

import pandas as pd

from marketdata.bartime import EXCHANGE_TZ
from marketdata.timeframes import is_intraday, offset

TARGETS = ("5min", "15min", "30min", "1h", "2h", "4h", "1day")


class ResampleError(ValueError):
    pass


def bucket_starts(index: pd.DatetimeIndex, target: str) -> pd.DatetimeIndex:
    """The open time (UTC) of the ``target`` bar each time in ``index`` belongs to."""
    local = index.tz_convert(EXCHANGE_TZ)
    midnight = local.normalize()
    if target == "1day":
        return pd.DatetimeIndex(midnight.tz_localize(None)).tz_localize("UTC")
    step = pd.Timedelta(offset(target))
    anchor = midnight + pd.Timedelta(hours=9, minutes=30)
    buckets = anchor + ((local - anchor) // step) * step
    return pd.DatetimeIndex(buckets).tz_convert("UTC")


def resample_bars(frame: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    """``frame`` (``source`` bars, UTC index, float64 or Decimal prices) as ``target`` bars."""
    if not is_intraday(source):
        raise ResampleError(f"can only resample intraday bars, not {source}")
    if target not in TARGETS:
        raise ResampleError(f"cannot resample to {target!r}; choose one of {', '.join(TARGETS)}")
    src, dst = pd.Timedelta(offset(source)), pd.Timedelta(offset(target)) if target != "1day" else None
    if dst is not None and (dst <= src or dst % src):
        raise ResampleError(f"{target} is not a whole multiple of {source}")
    if frame.empty:
        return frame.copy()
    keys = bucket_starts(frame.index, target).rename("timestamp")
    grouped = frame.groupby(keys, sort=True)
    result = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    result.index = pd.DatetimeIndex(result.index, name="timestamp").as_unit("us")
    return result
