"""From bars in memory to trades and metrics: signals per symbol, then the compiled loop."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from marketdata.indicators import IndicatorSpec, compute_one
from strategies.backtest import engine
from strategies.backtest.metrics import compute_metrics, periods_per_year
from strategies.backtest.settings import BacktestSettings
from strategies.base import Strategy


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
        return frame

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


def signal_flags(frame: pd.DataFrame) -> np.ndarray:
    """The int8 flag column the loop reads, from a ``Strategy.run`` frame."""
    flags = frame["entry_long"].to_numpy(dtype=bool) * engine.ENTRY_LONG
    flags |= frame["exit_long"].to_numpy(dtype=bool) * engine.EXIT_LONG
    flags |= frame["entry_short"].to_numpy(dtype=bool) * engine.ENTRY_SHORT
    flags |= frame["exit_short"].to_numpy(dtype=bool) * engine.EXIT_SHORT
    return flags.astype(np.int8)


def prepare_arrays(
    strategy: Strategy,
    bars: Mapping[str, pd.DataFrame],
    settings: BacktestSettings,
    start: datetime | pd.Timestamp | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], dict[str, int]]:
    """Signals of every symbol over its whole history, aligned on the union of timestamps,
    cut to bars at or after ``start`` (the bars before only warm the indicators up)."""
    if not bars:
        raise BacktestError("no symbols to backtest")
    for symbol, frame in bars.items():
        if frame.empty:
            raise BacktestError(f"no bars for {symbol} in the requested period")
    counts = {"entry_long": 0, "exit_long": 0, "entry_short": 0, "exit_short": 0}
    single = len(bars) == 1
    per_symbol = {}
    for symbol, frame in bars.items():
        out = strategy.run(frame)
        if start is not None:
            out = out[out.index >= pd.Timestamp(start)]
        for key in counts:
            counts[key] += int(out[key].sum())
        atr = (
            _atr(frame, settings.atr_length)[len(frame) - len(out) :]
            if settings.needs_atr
            else np.full(len(out), np.nan)
        )
        per_symbol[symbol] = (out, atr)
    if single:
        ((out, atr),) = per_symbol.values()
        index = out.index
        arrays = {
            c: out[c].to_numpy(dtype=np.float64).reshape(-1, 1) for c in ("open", "high", "low", "close")
        }
        arrays["atr"] = atr.reshape(-1, 1)
        arrays["sig"] = signal_flags(out).reshape(-1, 1)
    else:
        index = per_symbol[next(iter(per_symbol))][0].index
        for out, _ in per_symbol.values():
            index = index.union(out.index)
        n, m = len(index), len(per_symbol)
        arrays = {c: np.full((n, m), np.nan) for c in ("open", "high", "low", "close", "atr")}
        arrays["sig"] = np.zeros((n, m), dtype=np.int8)
        for j, (out, atr) in enumerate(per_symbol.values()):
            rows = index.get_indexer(out.index)
            for c in ("open", "high", "low", "close"):
                arrays[c][rows, j] = out[c].to_numpy(dtype=np.float64)
            arrays["atr"][rows, j] = atr
            arrays["sig"][rows, j] = signal_flags(out)
    if len(index) == 0:
        raise BacktestError("no bars left after the start date")
    return index, arrays, counts


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
    if settings.allow_short != strategy.allow_short:
        strategy.allow_short = settings.allow_short and strategy.supports_short
    index, a, counts = prepare_arrays(strategy, bars, settings, start)
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
    )
