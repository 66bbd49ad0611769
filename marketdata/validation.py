"""Validation of bar frames before they are stored: one place, shared by every path in.

Each problem names *where* (the row's timestamp, or the CSV line via ``locate``) and
*what* (the column and the offending value), so a user can fix the source.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd

from marketdata.timeframes import offset

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = (*PRICE_COLUMNS, "volume")
# NUMERIC(18, 6): at most 12 digits before the decimal point.
MAX_PRICE = Decimal("1e12")
# The smallest price that does not round to 0 in NUMERIC(18, 6).
MIN_PRICE = 0.0000005


class BarDataError(ValueError):
    """Bars that cannot be stored; the message says which row and column and why."""


def _where_ts(position: int, frame: pd.DataFrame) -> str:
    return f"bar {frame.index[position]}"


def as_float(column: pd.Series) -> np.ndarray:
    """A price/volume column (floats, Decimals or numeric strings) as float64; junk -> NaN."""
    if column.dtype.kind in "fiu":
        return column.to_numpy(dtype="float64")
    return pd.to_numeric(column.astype("string"), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def validate_bars(
    frame: pd.DataFrame, timeframe: str, locate: Callable[[int, pd.DataFrame], str] = _where_ts
) -> pd.DataFrame:
    """Return ``frame`` normalised (UTC index named ``timestamp``, sorted) or raise BarDataError.

    Checks: the columns exist, times are timezone-aware and unique (daily bars at
    midnight, keyed by the session date), prices are finite, positive and fit
    NUMERIC(18, 6), high >= max(open, close), low <= min(open, close), volume is a whole
    number >= 0.
    """
    offset(timeframe)  # raises on an unknown timeframe
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise BarDataError(f"missing column(s) {', '.join(missing)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise BarDataError("the index must hold the bar open times (a DatetimeIndex)")
    if frame.index.tz is None:
        raise BarDataError("bar times must be timezone-aware (UTC); got naive times")
    if frame.index.hasnans:
        raise BarDataError(f"{locate(int(np.flatnonzero(frame.index.isna())[0]), frame)}: missing time")
    frame = frame.copy()
    frame.index = frame.index.tz_convert("UTC").rename("timestamp")

    if timeframe in ("1day", "1week", "1month"):
        off = np.flatnonzero(frame.index != frame.index.normalize())
        if len(off):
            raise BarDataError(
                f"{locate(int(off[0]), frame)}, column timestamp: {timeframe} bars are keyed by the "
                f"session date at 00:00 UTC, got {frame.index[off[0]]}"
            )
    dup = np.flatnonzero(frame.index.duplicated())
    if len(dup):
        raise BarDataError(
            f"{locate(int(dup[0]), frame)}, column timestamp: duplicate time {frame.index[dup[0]]}"
        )

    values = {c: as_float(frame[c]) for c in BAR_COLUMNS}
    for column in BAR_COLUMNS:
        v = values[column]
        bad = np.flatnonzero(~np.isfinite(v))
        if len(bad):
            raise BarDataError(
                f"{locate(int(bad[0]), frame)}, column {column}: not a number: {frame[column].iloc[bad[0]]!r}"
            )
        limit_bad = np.flatnonzero((v < MIN_PRICE) | (v >= float(MAX_PRICE))) if column != "volume" else []
        if len(limit_bad):
            i = int(limit_bad[0])
            got = frame[column].iloc[i]
            raise BarDataError(
                f"{locate(i, frame)}, column {column}: price must be >= 0.000001 and < 1e12, got {got}"
            )
    vol = values["volume"]
    bad = np.flatnonzero((vol < 0) | (vol != np.floor(vol)) | (vol >= 2**63))
    if len(bad):
        i = int(bad[0])
        raise BarDataError(
            f"{locate(i, frame)}, column volume: must be a whole number >= 0, got {frame['volume'].iloc[i]}"
        )
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    bad = np.flatnonzero(h < np.maximum(o, c))
    if len(bad):
        i = int(bad[0])
        raise BarDataError(
            f"{locate(i, frame)}, column high: high {frame['high'].iloc[i]} is below "
            f"max(open, close) {max(frame['open'].iloc[i], frame['close'].iloc[i])}"
        )
    bad = np.flatnonzero(lo > np.minimum(o, c))
    if len(bad):
        i = int(bad[0])
        raise BarDataError(
            f"{locate(i, frame)}, column low: low {frame['low'].iloc[i]} is above "
            f"min(open, close) {min(frame['open'].iloc[i], frame['close'].iloc[i])}"
        )
    frame["volume"] = vol.astype("int64")
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index()
    return frame
