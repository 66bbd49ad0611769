"""Backtests and sweeps as business operations: validate a request, store it as a
BacktestRun, run it over stored bars and store the results; run and store a sweep."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from django.core.exceptions import ValidationError
from django.utils import timezone

from execution.backtest import BacktestError, BacktestResult, BacktestSettings, SettingsError, run_backtest
from execution.backtest.models import BacktestRun, BacktestStatus, SweepRun
from execution.backtest.signals import backtest_finished
from execution.backtest.sweep import SweepResult, expand_grid, run_sweep
from marketdata.indicators import IndicatorSpec
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame
from strategies import base
from strategies.base import ParameterError
from strategies.models import Strategy
from strategies.registry import UnknownStrategy, get_strategy

logger = logging.getLogger("execution.backtest.services")


# --- backtests ---------------------------------------------------------------------------
def load_bars(
    symbols: Iterable[str], timeframe: str, start: datetime | None, end: datetime | None, warmup: int
) -> dict[str, pd.DataFrame]:
    """Bars per symbol up to ``end``, starting ``warmup`` bars before ``start``."""
    out: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        frame = bars_frame(symbol, timeframe, None, end)
        if start is not None:
            first = int(frame.index.searchsorted(pd.Timestamp(start)))
            frame = frame.iloc[max(0, first - warmup) :]
        out[symbol.upper()] = frame
    return out


def warmup_bars(instance: base.Strategy, settings: BacktestSettings) -> int:
    """Bars to load before the first traded bar: the strategy's warm-up, and the ATR's when
    stops or targets use it (ATR depends on where it starts, like EMA)."""
    warmup = instance.warmup
    if settings.needs_atr:
        warmup = max(warmup, IndicatorSpec.of("atr", length=settings.atr_length).warmup + 1)
    return warmup


def _errors(exc: Exception, prefix: str = "") -> dict[str, list[str]]:
    errors = getattr(exc, "errors", None) or {"detail": str(exc)}
    return {f"{prefix}{k}": [str(v)] for k, v in errors.items()}


def validate_backtest_request(
    strategy_class: str,
    parameters: Mapping[str, Any],
    symbols: list[str],
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    settings: Mapping[str, Any] | BacktestSettings | None,
) -> tuple[base.Strategy, BacktestSettings]:
    """The strategy instance and settings of a backtest request; ValidationError per field."""
    errors: dict[str, list[str]] = {}
    instance = None
    try:
        cls = get_strategy(strategy_class)
        instance = cls(parameters, allow_short=True)
    except UnknownStrategy as exc:
        errors["strategy_class"] = [str(exc.args[0])]
    except ParameterError as exc:
        errors.update(_errors(exc, "parameters."))
    settings_obj = None
    try:
        settings_obj = (
            settings
            if isinstance(settings, BacktestSettings)
            else BacktestSettings.from_dict(dict(settings or {}))
        )
    except SettingsError as exc:
        errors.update(_errors(exc, "settings."))
    if not symbols:
        errors["symbols"] = ["at least one symbol is needed"]
    else:
        unknown = [s for s in symbols if not Stock.objects.filter(symbol=str(s).upper()).exists()]
        if unknown:
            errors["symbols"] = [f"unknown symbol(s): {', '.join(map(str, unknown))}"]
        else:
            bare = [
                str(s)
                for s in symbols
                if not Bar.objects.filter(stock__symbol=str(s).upper(), timeframe=timeframe).exists()
            ]
            if bare:
                errors["symbols"] = [f"no {timeframe} bars stored for {', '.join(bare)}"]
    if start and end and start >= end:
        errors["end"] = ["must be after start"]
    if errors:
        raise ValidationError(errors)
    instance.allow_short = settings_obj.allow_short and instance.supports_short
    return instance, settings_obj


def create_backtest_run(
    *,
    strategy_class: str,
    parameters: Mapping[str, Any] | None = None,
    symbols: list[str],
    timeframe: str = "1day",
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Mapping[str, Any] | BacktestSettings | None = None,
    strategy: Strategy | None = None,
) -> BacktestRun:
    """A validated, pending BacktestRun (run it with :func:`execute_backtest_run`)."""
    instance, settings_obj = validate_backtest_request(
        strategy_class, parameters or {}, symbols, timeframe, start, end, settings
    )
    return BacktestRun.objects.create(
        strategy=strategy,
        strategy_class=strategy_class,
        parameters=instance.p,
        symbols=[s.upper() for s in symbols],
        timeframe=timeframe,
        start=start,
        end=end,
        settings=settings_obj.to_dict(),
    )


def create_strategy_backtest_run(
    strategy: Strategy, start: datetime | None = None, end: datetime | None = None
) -> BacktestRun:
    """A validated, pending BacktestRun of a Strategy row with its own universe, timeframe
    and risk settings."""
    return create_backtest_run(
        strategy_class=strategy.strategy_class,
        parameters=strategy.parameters,
        symbols=list(strategy.stocks.values_list("symbol", flat=True)),
        timeframe=strategy.timeframe,
        start=start,
        end=end,
        settings=BacktestSettings.from_strategy(strategy),
        strategy=strategy,
    )


def backtest_strategy_row(
    strategy: Strategy, start: datetime | None = None, end: datetime | None = None
) -> BacktestRun:
    """Create and run a backtest of a Strategy row with its own universe and risk settings."""
    return execute_backtest_run(create_strategy_backtest_run(strategy, start, end))


def run_from_inputs(
    strategy_class: str,
    parameters: Mapping[str, Any],
    symbols: list[str],
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    settings: Mapping[str, Any] | BacktestSettings | None,
) -> BacktestResult:
    """Load the bars and run a backtest in memory (nothing stored)."""
    instance, settings_obj = validate_backtest_request(
        strategy_class, parameters, symbols, timeframe, start, end, settings
    )
    bars = load_bars(symbols, timeframe, start, end, warmup_bars(instance, settings_obj))
    return run_backtest(instance, bars, settings_obj, timeframe=timeframe, start=start)


def store_result(run: BacktestRun, result: BacktestResult, duration: float) -> BacktestRun:
    run.metrics = result.metrics
    run.equity_curve = result.equity_points()
    run.trades = result.trade_records()
    run.status = BacktestStatus.DONE
    run.error = ""
    run.duration_seconds = round(duration, 4)
    run.finished_at = timezone.now()
    run.save()
    return run


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
    return str(exc)


def _fail(run: BacktestRun, message: str, began: float) -> BacktestRun:
    run.status = BacktestStatus.FAILED
    run.error = message
    run.finished_at = timezone.now()
    run.duration_seconds = round(time.perf_counter() - began, 4)
    run.save()
    logger.warning("backtest #%s failed: %s", run.pk, message)
    return run


def execute_backtest_run(run: BacktestRun) -> BacktestRun:
    """Run a stored backtest request and store its results (or its error, status failed)."""
    run.status = BacktestStatus.RUNNING
    run.save(update_fields=["status"])
    began = time.perf_counter()
    try:
        result = run_from_inputs(
            run.strategy_class, run.parameters, run.symbols, run.timeframe, run.start, run.end, run.settings
        )
    except (BacktestError, ValidationError, ValueError, Stock.DoesNotExist) as exc:
        return _fail(run, _message(exc), began)
    except Exception as exc:  # a background run must end as failed, never stay "running"
        logger.exception("backtest #%s crashed", run.pk)
        return _fail(run, f"internal error: {exc.__class__.__name__}: {exc}", began)
    store_result(run, result, time.perf_counter() - began)
    backtest_finished.send(sender=BacktestRun, run=run)  # trading broadcasts it after commit
    return run


# --- sweeps -------------------------------------------------------------------------------
def run_and_store_sweep(
    *,
    strategy_class: str,
    grid: dict[str, list[Any]],
    symbols: list[str],
    timeframe: str = "1day",
    base_parameters: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    split: float | datetime | None = 0.7,
    folds: int = 0,
    rank_by: str = "sharpe",
    processes: int | None = None,
    save: bool = False,
) -> tuple[SweepResult, SweepRun | None, float]:
    """Validate, load bars (warm-up included), sweep the grid; optionally store a SweepRun.

    Returns the result, the stored row (or None) and the seconds the sweep took.
    """
    fixed = dict(base_parameters or {})
    try:
        points = expand_grid(grid)
    except ValueError as exc:
        raise ValidationError({"grid": [str(exc)]}) from None
    try:
        cls = get_strategy(strategy_class)
    except UnknownStrategy as exc:
        raise ValidationError({"strategy_class": [str(exc.args[0])]}) from None
    unknown = set(grid) - set(cls.parameters)
    if unknown:
        raise ValidationError({"grid": [f"unknown parameter(s) {', '.join(sorted(unknown))} for {cls.key}"]})
    instance, settings_obj = validate_backtest_request(
        strategy_class, {**fixed, **points[0]}, symbols, timeframe, start, end, settings
    )
    warmup = warmup_bars(instance, settings_obj)
    for point in points:
        try:
            warmup = max(warmup, cls({**fixed, **point}).warmup)
        except ParameterError:
            continue  # reported per point by the sweep
    bars = load_bars(symbols, timeframe, start, end, warmup)
    began = time.perf_counter()
    try:
        result = run_sweep(
            cls,
            grid,
            bars,
            settings_obj,
            timeframe=timeframe,
            base_parameters=fixed,
            split=split,
            folds=folds,
            rank_by=rank_by,
            processes=processes,
            start=start,
        )
    except (ValueError, StopIteration) as exc:
        raise ValidationError({"detail": [str(exc) or "no bars"]}) from None
    elapsed = time.perf_counter() - began
    run = None
    if save:
        run = SweepRun.objects.create(
            strategy_class=cls.key,
            grid=grid,
            base_parameters=fixed,
            symbols=list(bars),
            timeframe=timeframe,
            start=start,
            end=end,
            split=split if isinstance(split, datetime) else None,
            rank_by=rank_by,
            settings=settings_obj.to_dict(),
            results={
                "split": split.isoformat() if isinstance(split, datetime) else split,
                "folds": folds,
                "rows": result.rows,
                "walk_forward": result.walk_forward,
                "skipped": result.skipped,
            },
            duration_seconds=round(elapsed, 3),
        )
    return result, run, elapsed
