"""From bars in memory to trades and metrics: signals per symbol, then the compiled loop."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from execution.backtest import engine
from execution.backtest.metrics import compute_metrics, periods_per_year
from execution.backtest.settings import BacktestSettings
from marketdata.indicators import IndicatorSpec, compute_one
from strategies.base import SignalFrame, Strategy


class BacktestError(ValueError):
    """The backtest cannot run (no bars, bad period...); the message says why."""


@dataclass
class BacktestResult:
    strategy_key: str
    parameters: dict[str, Any]
    symbols: list[str]
    timeframe: str
    settings: BacktestSettings
    index: pd.DatetimeIndex
    equity: np.ndarray
    in_market: np.ndarray
    trade_array: np.ndarray
    rejected: int
    metrics: dict[str, Any]
    signal_counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, pd.Series] = field(default_factory=dict, repr=False)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per closed trade, with times and symbols resolved."""
        a = self.trade_array
        frame = pd.DataFrame(
            {
                "symbol": [self.symbols[int(i)] for i in a[:, engine.T_SYMBOL]],
                "direction": np.where(a[:, engine.T_DIRECTION] > 0, "long", "short"),
                "signal_time": self.index[a[:, engine.T_SIGNAL_BAR].astype(np.int64)],
                "entry_time": self.index[a[:, engine.T_ENTRY_BAR].astype(np.int64)],
                "exit_time": self.index[a[:, engine.T_EXIT_BAR].astype(np.int64)],
                "quantity": a[:, engine.T_QUANTITY],
                "entry_price": a[:, engine.T_ENTRY_PRICE],
                "exit_price": a[:, engine.T_EXIT_PRICE],
                "entry_fee": a[:, engine.T_ENTRY_FEE],
                "exit_fee": a[:, engine.T_EXIT_FEE],
                "pnl": a[:, engine.T_PNL],
                "exit_reason": [engine.REASONS[int(r)] for r in a[:, engine.T_REASON]],
                "stop": a[:, engine.T_STOP],
                "target": a[:, engine.T_TARGET],
                "bars_held": (a[:, engine.T_EXIT_BAR] - a[:, engine.T_ENTRY_BAR]).astype(np.int64),
            }
        )
        frame["return_pct"] = 100.0 * frame["pnl"] / (frame["entry_price"] * frame["quantity"])
        frame["entry_reason"] = self._entry_reasons(frame)
        return frame

    def _entry_reasons(self, trades: pd.DataFrame) -> list[str]:
        """The strategy's reason for each trade's entry signal (looked up, never scanned)."""
        out = [""] * len(trades)
        symbol_of = self.trade_array[:, engine.T_SYMBOL].astype(np.int64)
        signal_bar = self.trade_array[:, engine.T_SIGNAL_BAR].astype(np.int64)
        for j, symbol in enumerate(self.symbols):
            reasons = self.reasons.get(symbol)
            picked = np.flatnonzero(symbol_of == j)
            if reasons is None or not len(picked):
                continue
            if reasons.index.equals(self.index):
                positions = signal_bar[picked]
            else:
                positions = reasons.index.get_indexer(self.index[signal_bar[picked]])
            if isinstance(reasons.dtype, pd.CategoricalDtype):
                categories = reasons.cat.categories.to_numpy(dtype=object)
                texts = categories[reasons.cat.codes.to_numpy()[positions]].tolist()
            else:
                texts = reasons.to_numpy(dtype=object)[positions].tolist()
            for i, text in zip(picked.tolist(), texts, strict=True):
                out[i] = "" if text is None or text != text else str(text)
        return out

    def trade_records(self) -> list[dict[str, Any]]:
        """The trades as JSON-ready dicts (ISO times, NaN levels as None)."""
        records = []
        for row in self.trades.itertuples(index=False):
            record = row._asdict()
            for key, value in record.items():
                if isinstance(value, pd.Timestamp):
                    record[key] = value.isoformat()
                elif isinstance(value, float | np.floating):
                    record[key] = None if math.isnan(value) else round(float(value), 6)
                elif isinstance(value, np.integer):
                    record[key] = int(value)
            records.append(record)
        return records

    def equity_points(self, max_points: int = 2000) -> list[list[Any]]:
        """[[iso time, equity], ...], thinned to at most ``max_points`` (last point kept)."""
        n = len(self.equity)
        step = max(1, math.ceil(n / max_points))
        rows = list(range(0, n, step))
        if n and rows[-1] != n - 1:
            rows.append(n - 1)
        return [[self.index[i].isoformat(), round(float(self.equity[i]), 2)] for i in rows]


def _atr(bars: pd.DataFrame, length: int) -> np.ndarray:
    return compute_one(bars, IndicatorSpec.of("atr", length=length)).iloc[:, 0].to_numpy()


def signal_flags(signals: SignalFrame | pd.DataFrame, allow_short: bool = True) -> np.ndarray:
    """The int8 flag column the loop reads, from a SignalFrame (or a ``Strategy.run`` frame)."""

    def column(name: str) -> np.ndarray:
        values = getattr(signals, name) if isinstance(signals, SignalFrame) else signals[name]
        return values.to_numpy(dtype=bool, na_value=False)

    flags = column("entry_long") * engine.ENTRY_LONG
    flags |= column("exit_long") * engine.EXIT_LONG
    if allow_short:
        flags |= column("entry_short") * engine.ENTRY_SHORT
        flags |= column("exit_short") * engine.EXIT_SHORT
    return flags.astype(np.int8)


@dataclass
class _SymbolSignals:
    frame: pd.DataFrame  # bars (and indicators) from the start
    flags: np.ndarray
    atr: np.ndarray
    reasons: pd.Series


def _symbol_signals(
    strategy: Strategy, bars: pd.DataFrame, settings: BacktestSettings, start: pd.Timestamp | None
) -> _SymbolSignals:
    # Strategy.run() without building its combined frame: the same prepare() and signals(),
    # the same rule for shorts (cleared unless allowed), fewer copies of a long history.
    frame = strategy.prepare(bars)
    signals = strategy.signals(frame)
    flags = signal_flags(signals, strategy.allow_short)
    reasons = signals.reasons
    atr = _atr(bars, settings.atr_length) if settings.needs_atr else None
    if start is not None:
        first = int(frame.index.searchsorted(start))
        frame, flags, reasons = frame.iloc[first:], flags[first:], reasons.iloc[first:]
        atr = atr[first:] if atr is not None else None
    if atr is None:
        atr = np.full(len(frame), np.nan)
    return _SymbolSignals(frame, flags, atr, reasons)


def prepare_arrays(
    strategy: Strategy,
    bars: Mapping[str, pd.DataFrame],
    settings: BacktestSettings,
    start: datetime | pd.Timestamp | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], dict[str, int], dict[str, pd.Series]]:
    """Signals of every symbol over its whole history, aligned on the union of timestamps,
    cut to bars at or after ``start`` (the bars before only warm the indicators up).

    Returns the index, the 2-D arrays the loop reads, signal counts and reasons per symbol.
    """
    if not bars:
        raise BacktestError("no symbols to backtest")
    for symbol, frame in bars.items():
        if frame.empty:
            raise BacktestError(f"no bars for {symbol} in the requested period")
    begin = pd.Timestamp(start) if start is not None else None
    per_symbol = {symbol: _symbol_signals(strategy, frame, settings, begin) for symbol, frame in bars.items()}
    counts = {"entry_long": 0, "exit_long": 0, "entry_short": 0, "exit_short": 0}
    for item in per_symbol.values():
        for key, flag in zip(
            counts, (engine.ENTRY_LONG, engine.EXIT_LONG, engine.ENTRY_SHORT, engine.EXIT_SHORT), strict=True
        ):
            counts[key] += int(np.count_nonzero(item.flags & flag))
    columns = ("open", "high", "low", "close")
    if len(per_symbol) == 1:
        (item,) = per_symbol.values()
        index = item.frame.index
        arrays = {c: item.frame[c].to_numpy(dtype=np.float64).reshape(-1, 1) for c in columns}
        arrays["atr"] = item.atr.reshape(-1, 1)
        arrays["sig"] = item.flags.reshape(-1, 1)
    else:
        index = pd.DatetimeIndex([])
        for item in per_symbol.values():
            index = item.frame.index if index.empty else index.union(item.frame.index)
        n, m = len(index), len(per_symbol)
        arrays = {c: np.full((n, m), np.nan) for c in (*columns, "atr")}
        arrays["sig"] = np.zeros((n, m), dtype=np.int8)
        for j, item in enumerate(per_symbol.values()):
            rows = index.get_indexer(item.frame.index)
            for c in columns:
                arrays[c][rows, j] = item.frame[c].to_numpy(dtype=np.float64)
            arrays["atr"][rows, j] = item.atr
            arrays["sig"][rows, j] = item.flags
    if len(index) == 0:
        raise BacktestError("no bars left after the start date")
    return index, arrays, counts, {symbol: item.reasons for symbol, item in per_symbol.items()}


def run_backtest(
    strategy: Strategy,
    bars: Mapping[str, pd.DataFrame],
    settings: BacktestSettings | None = None,
    *,
    timeframe: str = "1day",
    start: datetime | pd.Timestamp | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` over ``bars`` (symbol -> OHLCV frame with a UTC index).

    All bars feed the indicators; trading starts at ``start`` (default: the first bar).
    """
    settings = settings or BacktestSettings()
    wanted = settings.allow_short and strategy.supports_short
    if strategy.allow_short != wanted:
        # The settings decide about shorts; leave the caller's instance as it was.
        strategy = copy.copy(strategy)
        strategy.allow_short = wanted
    index, a, counts, reasons = prepare_arrays(strategy, bars, settings, start)
    trades, equity, in_market, rejected, _ = engine.run_arrays(
        a["open"], a["high"], a["low"], a["close"], a["atr"], a["sig"], settings.as_array()
    )
    metrics = compute_metrics(
        equity,
        trades,
        in_market,
        a["close"],
        initial_cash=settings.initial_cash,
        periods=periods_per_year(timeframe),
        rejected=rejected,
        index=index,
    )
    return BacktestResult(
        strategy_key=strategy.key,
        parameters=dict(strategy.p),
        symbols=list(bars),
        timeframe=timeframe,
        settings=settings,
        index=index,
        equity=equity,
        in_market=in_market,
        trade_array=trades,
        rejected=rejected,
        metrics=metrics,
        signal_counts=counts,
        reasons=reasons,
    )
