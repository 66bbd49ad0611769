"""The lookahead checks: a strategy's signals must not depend on the future, nor (after the
warm-up) on where the history starts.

1. **Causality**: for every bar t, the signals computed on bars ``0..t`` only (the live
   engine's view) equal row t of the signals computed on the whole history (the
   backtester's view).
2. **Warm-up**: the signals computed on the history starting ``k`` bars later equal the
   whole-history signals on every bar at least ``strategy.warmup`` bars after that start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from strategies.base import SIGNAL_COLUMNS, Strategy


@dataclass(frozen=True)
class Difference:
    """The first bar where two views of the signals disagree."""

    check: str
    position: int
    timestamp: pd.Timestamp
    column: str
    expected: bool
    got: bool

    def __str__(self) -> str:
        return (
            f"{self.check}: first difference at bar {self.position} ({self.timestamp.isoformat()}): "
            f"{self.column} is {self.got} but the whole history says {self.expected}"
        )


def _signals(strategy: Strategy, bars: pd.DataFrame) -> pd.DataFrame:
    return strategy.run(bars)[list(SIGNAL_COLUMNS)]


def check_causal(strategy: Strategy, bars: pd.DataFrame, start: int = 0) -> Difference | None:
    """Bar-by-bar signals on growing history vs the whole history; the first difference."""
    whole = _signals(strategy, bars).to_numpy(dtype=bool)
    for t in range(max(start, 0), len(bars)):
        row = _signals(strategy, bars.iloc[: t + 1]).to_numpy(dtype=bool)[-1]
        if not np.array_equal(row, whole[t]):
            column = int(np.flatnonzero(row != whole[t])[0])
            return Difference(
                "causality",
                t,
                bars.index[t],
                SIGNAL_COLUMNS[column],
                bool(whole[t, column]),
                bool(row[column]),
            )
    return None


def check_warmup(
    strategy: Strategy, bars: pd.DataFrame, offsets: tuple[int, ...] = (1, 7, 50)
) -> Difference | None:
    """Signals from a later start vs the whole history, after the warm-up; the first difference."""
    whole = _signals(strategy, bars).to_numpy(dtype=bool)
    warmup = strategy.warmup
    for offset in offsets:
        if offset + warmup >= len(bars):
            continue
        later = _signals(strategy, bars.iloc[offset:]).to_numpy(dtype=bool)[warmup:]
        expected = whole[offset + warmup :]
        rows, columns = np.nonzero(later != expected)
        if len(rows):
            t = offset + warmup + int(rows[0])
            c = int(columns[0])
            return Difference(
                f"warm-up (history starting {offset} bars later)",
                t,
                bars.index[t],
                SIGNAL_COLUMNS[c],
                bool(whole[t, c]),
                bool(later[rows[0], c]),
            )
    return None


def check_strategy(strategy: Strategy, bars: pd.DataFrame) -> list[Difference]:
    """Both checks; an empty list means the strategy passed."""
    return [d for d in (check_causal(strategy, bars), check_warmup(strategy, bars)) if d is not None]


def synthetic_bars(n: int, seed: int = 42) -> pd.DataFrame:
    """A seeded daily random walk with consistent OHLC, for checks without stored data."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n)))
    index = pd.date_range("2000-01-03", periods=n, freq="B", tz="UTC", name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1e6}, index=index)
