"""The bars the engine steps on: how it gets them, and how far it has got.

Today every bar comes from the database (the sample replayed as a live feed, or what
``fetch_bars`` stores): the history of each (timeframe, symbol) the active strategies
trade is loaded once and new stored bars are appended (polled, or announced one symbol
at a time by :meth:`StoredBarFeed.append_new`). The cursor per timeframe (the last bar
time the engine finished, saved in ExecutionState) decides what is still pending, so a
restart resumes after the last finished bar and a ``--from/--to`` run replays a window.
A feed that wakes the engine at each bar close belongs here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from execution.models import ExecutionState
from execution.selectors import cursor_key, engine_cursor
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame

DEMO_REPLAY_BARS = 400  # a fresh sample replay starts this many bars before the newest bar
INDEX_SYMBOL = "SPX"


def bar_dict(ts: pd.Timestamp, row: Any) -> dict[str, Any]:
    """One row of a bars frame (open, high, low, close, volume) as the broker takes it."""
    return {
        "timestamp": ts.to_pydatetime(),
        "open": float(row[0]),
        "high": float(row[1]),
        "low": float(row[2]),
        "close": float(row[3]),
        "volume": float(row[4]),
    }


def price_decimal(value: float) -> Decimal:
    """A bar's float price as the Decimal the orders and trades store (6 places)."""
    return Decimal(repr(round(float(value), 6)))


class StoredBarFeed:
    """Bars from the database for the (timeframe, symbol) pairs the engine runs."""

    def __init__(
        self, start: datetime | None = None, end: datetime | None = None, demo_bars: int = DEMO_REPLAY_BARS
    ) -> None:
        self.start, self.end, self.demo_bars = start, end, demo_bars
        self.history: dict[tuple[str, str], pd.DataFrame] = {}
        self.stocks: dict[str, Stock] = {}
        self.cursor: dict[str, datetime | None] = {}
        self.index: pd.DataFrame | None = None  # the market index's closes and SMA 200

    # --- loading --------------------------------------------------------------------------
    def load(self, timeframe: str, symbols: list[str], warmup: int, only_missing: bool = False) -> None:
        """The history of ``symbols`` (all of them again, or ``only_missing``), and where
        this timeframe starts when it has no cursor yet (always, unless ``only_missing``)."""
        for symbol in symbols:
            if not only_missing or (timeframe, symbol) not in self.history:
                self.history[(timeframe, symbol)] = bars_frame(self.stocks[symbol], timeframe)
        if not only_missing or timeframe not in self.cursor:
            self.cursor[timeframe] = self._initial_cursor(timeframe, engine_cursor(timeframe), warmup)

    def load_index(self) -> None:
        """The index the market context reports the trend of (daily closes, SMA 200)."""
        index = Stock.objects.filter(symbol=INDEX_SYMBOL).first()
        if index is not None:
            closes = bars_frame(index, "1day")["close"]
            if len(closes):
                self.index = pd.DataFrame({"close": closes, "sma200": closes.rolling(200).mean()})

    def times(self, timeframe: str) -> pd.DatetimeIndex:
        """Every bar time of ``timeframe`` any loaded symbol has, oldest first."""
        frames = [f.index for (tf, _), f in self.history.items() if tf == timeframe]
        if not frames:
            return pd.DatetimeIndex([], tz="UTC")
        index = frames[0]
        for other in frames[1:]:
            index = index.union(other)
        return index

    def _initial_cursor(self, timeframe: str, saved: datetime | None, warmup: int) -> datetime | None:
        """Where this run starts: after the saved cursor when it lies in the requested
        period (a restart resumes), else just before --from, else (a fresh live replay of
        the sample) a few hundred bars before the newest bar, after every warm-up."""
        start, end = self.start, self.end
        if saved is not None and (start is None or saved >= start) and (end is None or saved <= end):
            return saved
        times = self.times(timeframe)
        if start is not None:
            before = times[times < pd.Timestamp(start)]
            return before[-1].to_pydatetime() if len(before) else None
        if saved is not None:
            return saved
        if not len(times):
            return None
        position = max(len(times) - self.demo_bars, min(warmup, len(times) - 1), 0)
        return times[position - 1].to_pydatetime() if position > 0 else None

    # --- what is pending ------------------------------------------------------------------
    def pending_times(self, timeframes: list[str]) -> list[tuple[datetime, str]]:
        """Bar times after each timeframe's cursor (and up to --to), oldest first."""
        out = []
        for timeframe in timeframes:
            times = self.times(timeframe)
            cursor = self.cursor.get(timeframe)
            if cursor is not None:
                times = times[times > pd.Timestamp(cursor)]
            if self.start is not None:
                times = times[times >= pd.Timestamp(self.start)]
            if self.end is not None:
                times = times[times <= pd.Timestamp(self.end)]
            out += [(t.to_pydatetime(), timeframe) for t in times]
        return sorted(out)

    def poll_new_bars(self) -> int:
        """Append bars stored since the history was loaded (a live feed); how many."""
        added = 0
        for (timeframe, symbol), frame in list(self.history.items()):
            last = frame.index[-1] if len(frame) else None
            qs = Bar.objects.filter(stock=self.stocks[symbol], timeframe=timeframe)
            if last is not None:
                qs = qs.filter(timestamp__gt=last.to_pydatetime())
            if not qs.exists():
                continue
            new = bars_frame(
                self.stocks[symbol], timeframe, start=last.to_pydatetime() if last is not None else None
            )
            if last is not None:
                new = new[new.index > last]
            if len(new):
                self.history[(timeframe, symbol)] = pd.concat([frame, new])
                added += len(new)
        return added

    def append_new(self, symbol: str, timeframe: str) -> pd.DatetimeIndex:
        """A live feed's notification that ``symbol`` has new closed bars stored: append
        them to its history; their times, oldest first (empty when there were none)."""
        key = (timeframe, symbol)
        frame = self.history[key]
        last = frame.index[-1] if len(frame) else None
        new = bars_frame(
            self.stocks[symbol], timeframe, start=last.to_pydatetime() if last is not None else None
        )
        if last is not None:
            new = new[new.index > last]
        if len(new):
            self.history[key] = pd.concat([frame, new])
        return new.index

    # --- one bar time ---------------------------------------------------------------------
    def bars_at(
        self, timeframe: str, ts: datetime, only: set[str] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """The bars opening at ``ts`` per symbol (of those in ``only`` when given), and
        each one's row position in its history."""
        stamp = pd.Timestamp(ts)
        bars: dict[str, dict[str, Any]] = {}
        positions: dict[str, int] = {}
        for (tf, symbol), frame in self.history.items():
            if tf != timeframe or (only is not None and symbol not in only):
                continue
            pos = frame.index.searchsorted(stamp)
            if pos < len(frame) and frame.index[pos] == stamp:
                bars[symbol] = bar_dict(stamp, frame.iloc[pos].to_numpy())
                positions[symbol] = pos
        return bars, positions

    def advance(self, timeframe: str, ts: datetime) -> None:
        """The bar at ``ts`` is finished: move the cursor and save it (a restart resumes here)."""
        self.cursor[timeframe] = ts
        ExecutionState.objects.update_or_create(
            key=cursor_key(timeframe), defaults={"value": {"ts": ts.isoformat()}}
        )
