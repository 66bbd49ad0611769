"""Test helpers: synthetic bars and a strategy that replays scripted signals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategies.base import SignalFrame, Strategy

FLAGS = {"L": "entry_long", "X": "exit_long", "S": "entry_short", "C": "exit_short"}


def random_bars(
    n: int, seed: int = 1, freq: str = "1D", start: str = "2020-01-01", vol: float = 0.01
) -> pd.DataFrame:
    """A seeded geometric random walk with consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, vol / 5, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1000.0}, index=index
    )


def scripted_bars(rows: list[tuple[float, float, float, float, str]]) -> pd.DataFrame:
    """Bars from (open, high, low, close, signals) rows; signals is a string of FLAGS letters."""
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1D", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        [r[:4] for r in rows], columns=["open", "high", "low", "close"], index=index, dtype="float64"
    )
    frame["volume"] = 1000.0
    frame["script"] = [r[4] for r in rows]
    return frame


class Scripted(Strategy):
    """Signals read from the bars' ``script`` column (letters L, X, S, C)."""

    key = "scripted"
    name = "Scripted (tests)"
    supports_short = True
    parameters = {}

    def indicators(self):
        return []

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        script = frame["script"]
        columns = {name: script.str.contains(letter) for letter, name in FLAGS.items()}
        return SignalFrame(**columns, reasons=script.where(script != "", ""))
