"""Parameter sweeps: every point of a grid backtested in parallel processes, ranked in-sample
and reported out-of-sample, so that the ranking can be checked for overfitting.

- ``split``: the in-sample period is the bars before the split, the out-of-sample period the
  bars from it (its indicators warmed up on the bars before).
- ``folds`` (walk-forward, anchored): the history is cut into ``folds + 1`` equal parts;
  fold k picks the best point on parts 0..k-1 and reports it on part k.

Indicators are computed once for the union of every point's specs, before the worker
processes fork, so that each point only runs its signals and the compiled loop.
"""

from __future__ import annotations

import gc
import itertools
import math
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from execution.backtest.runner import BacktestError, run_backtest
from execution.backtest.settings import BacktestSettings
from marketdata.indicators import compute as compute_indicators
from strategies.base import ParameterError, Strategy, without_reasons

# Metrics where lower is better; every other rank_by metric is "higher is better".
LOWER_IS_BETTER = {"max_drawdown_duration", "volatility"}
SUMMARY_KEYS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "final_equity",
)


def expand_grid(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order."""
    if not grid:
        return [{}]
    keys = list(grid)
    for key in keys:
        if not isinstance(grid[key], list | tuple) or not grid[key]:
            raise ValueError(f"grid {key}: expected a non-empty list of values")
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _score(metrics: dict[str, Any] | None, rank_by: str) -> float:
    value = (metrics or {}).get(rank_by)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -math.inf
    return -float(value) if rank_by in LOWER_IS_BETTER else float(value)


@dataclass
class SweepResult:
    rank_by: str
    rows: list[dict[str, Any]]  # best in-sample first
    walk_forward: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None


# State shared with forked workers (set in the parent just before the pool starts).
_STATE: dict[str, Any] = {}


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in SUMMARY_KEYS}


def _run_point(task: tuple[int, dict[str, Any]]) -> tuple[int, list[dict[str, Any] | None], str | None]:
    """Backtest one grid point on every period in ``_STATE['periods']``."""
    index, params = task
    cls: type[Strategy] = _STATE["cls"]
    settings: BacktestSettings = _STATE["settings"]
    try:
        strategy = cls(params, allow_short=settings.allow_short)
    except ParameterError as exc:
        return index, [], str(exc)
    out: list[dict[str, Any] | None] = []
    for bars, start in _STATE["periods"]:
        try:
            with without_reasons():  # a sweep ranks metrics; nobody reads its reasons
                result = run_backtest(strategy, bars, settings, timeframe=_STATE["timeframe"], start=start)
            out.append(_summary(result.metrics))
        except BacktestError:
            out.append(None)
    return index, out, None


def _slice(bars: Mapping[str, pd.DataFrame], lo: pd.Timestamp | None, hi: pd.Timestamp | None):
    out = {}
    for symbol, frame in bars.items():
        part = frame
        if hi is not None:
            part = part[part.index < hi]
        out[symbol] = part
    return out, lo


def _with_indicators(
    cls: type[Strategy], points: list[dict[str, Any]], bars: Mapping[str, pd.DataFrame]
):
    specs = {}
    for params in points:
        try:
            for spec in cls(params).indicators():
                specs.setdefault(spec.key, spec)
        except ParameterError:
            continue
    return {symbol: compute_indicators(frame, specs.values()) for symbol, frame in bars.items()}


def _execute(points: list[dict[str, Any]], processes: int) -> list[tuple[int, list, str | None]]:
    tasks = list(enumerate(points))
    if processes <= 1 or len(points) < 4:
        return [_run_point(t) for t in tasks]
    context = multiprocessing.get_context("fork")
    # Workers inherit the bars and indicators by fork (nothing is pickled). Freezing the
    # garbage collector's view of the parent's objects keeps the children's collections
    # from writing to (and so copying) every inherited page.
    gc.freeze()
    try:
        with context.Pool(processes) as pool:
            return pool.map(_run_point, tasks, chunksize=max(1, len(tasks) // (processes * 4)))
    finally:
        gc.unfreeze()


def run_sweep(
    cls: type[Strategy],
    grid: Mapping[str, list[Any]],
    bars: Mapping[str, pd.DataFrame],
    settings: BacktestSettings,
    *,
    timeframe: str = "1day",
    base_parameters: Mapping[str, Any] | None = None,
    split: pd.Timestamp | float | None = 0.7,
    folds: int = 0,
    rank_by: str = "sharpe",
    processes: int | None = None,
    start: pd.Timestamp | None = None,
) -> SweepResult:
    """Backtest every grid point; rank by ``rank_by`` in-sample, report out-of-sample.

    ``split`` is a timestamp or a fraction of the bars (0.7 = the first 70 % in-sample);
    None runs the whole history only. ``processes`` defaults to the CPU count. Trading
    starts at ``start`` (the bars before only warm the indicators up).
    """
    points = [{**(base_parameters or {}), **p} for p in expand_grid(grid)]
    processes = processes or os.cpu_count() or 1
    bars = _with_indicators(cls, points, bars)
    index = next(iter(bars.values())).index
    if start is not None:
        index = index[index >= pd.Timestamp(start)]
    if len(index) < 2:
        raise ValueError("not enough bars to sweep")
    if isinstance(split, float):
        if not 0 < split < 1:
            raise ValueError(f"split must be a fraction in (0, 1), got {split}")
        split = index[int(len(index) * split)]
    periods = [_slice(bars, start, split)]
    if split is not None:
        periods.append(_slice(bars, split, None))
    boundaries = []
    if folds:
        if folds < 1:
            raise ValueError("folds must be at least 1")
        cuts = [index[int(len(index) * k / (folds + 1))] for k in range(1, folds + 1)]
        ends = [*cuts[1:], None]
        for cut, stop in zip(cuts, ends, strict=True):
            boundaries.append((cut, stop))
            periods.append(_slice(bars, start, cut))  # in-sample: everything before the cut
            periods.append(_slice(bars, cut, stop))  # out-of-sample: the next part
    _STATE.update(cls=cls, settings=settings, timeframe=timeframe, periods=periods)
    try:
        outcomes = _execute(points, processes)
    finally:
        _STATE.clear()
    rows, skipped = [], []
    for i, results, error in sorted(outcomes, key=lambda o: o[0]):
        if error:
            skipped.append({"parameters": points[i], "error": error})
            continue
        row = {"parameters": points[i], "in_sample": results[0]}
        if split is not None:
            row["out_of_sample"] = results[1]
        row["_folds"] = results[2 if split is not None else 1 :]
        rows.append(row)
    walk_forward = []
    for k, (cut, stop) in enumerate(boundaries):
        best = max(rows, key=lambda r: _score(r["_folds"][2 * k], rank_by), default=None)
        if best is None:
            break
        walk_forward.append(
            {
                "fold": k + 1,
                "out_of_sample_start": cut.isoformat(),
                "out_of_sample_end": stop.isoformat() if stop is not None else None,
                "parameters": best["parameters"],
                "in_sample": best["_folds"][2 * k],
                "out_of_sample": best["_folds"][2 * k + 1],
            }
        )
    for row in rows:
        row.pop("_folds")
    rows.sort(key=lambda r: _score(r["in_sample"], rank_by), reverse=True)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return SweepResult(rank_by=rank_by, rows=rows, walk_forward=walk_forward, skipped=skipped)
