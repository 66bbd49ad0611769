"""Business operations on strategies: create/update with validation, activate, evaluate and
store signals, run and store backtests."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from marketdata.indicators import IndicatorSpec
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame, get_stock
from strategies.backtest import BacktestError, BacktestResult, BacktestSettings, SettingsError, run_backtest
from strategies.backtest.sweep import SweepResult, expand_grid, run_sweep
from strategies.base import SIGNAL_COLUMNS, ParameterError
from strategies.base import Strategy as StrategyClass
from strategies.events import record_event
from strategies.models import BacktestRun, BacktestStatus, Strategy, SweepRun, TradeSignal
from strategies.registry import UnknownStrategy, get_strategy
from trading.broadcast import publish

logger = logging.getLogger("strategies.services")

STRATEGY_FIELDS = {
    "name",
    "description",
    "strategy_class",
    "parameters",
    "timeframe",
    "active",
    "allow_short",
    "sizing_method",
    "position_fraction",
    "risk_per_trade",
    "stop_loss_type",
    "stop_loss_value",
    "take_profit_type",
    "take_profit_value",
    "max_open_positions",
    "fractional_shares",
    "risk_settings",
}


# --- strategies ---------------------------------------------------------------------------
def build_strategy(strategy: Strategy) -> StrategyClass:
    """The strategy class of a row, instantiated with its parameters and short setting."""
    cls = get_strategy(strategy.strategy_class)
    return cls(strategy.parameters, allow_short=strategy.allow_short)


def _resolve_stocks(stocks: Iterable[Stock | str]) -> list[Stock]:
    resolved, unknown = [], []
    for item in stocks:
        if isinstance(item, Stock):
            resolved.append(item)
            continue
        try:
            resolved.append(get_stock(item))
        except Stock.DoesNotExist:
            unknown.append(str(item))
    if unknown:
        raise ValidationError({"stocks": [f"unknown symbol(s): {', '.join(unknown)}"]})
    return resolved


def _apply(strategy: Strategy, values: Mapping[str, Any]) -> None:
    unknown = set(values) - STRATEGY_FIELDS
    if unknown:
        raise ValidationError({field: ["unknown field"] for field in sorted(unknown)})
    for field, value in values.items():
        setattr(strategy, field, value)


def _save_validated(strategy: Strategy, stocks: Iterable[Stock | str] | None) -> Strategy:
    resolved = _resolve_stocks(stocks) if stocks is not None else None
    strategy.full_clean()
    # Store the cleaned parameters (defaults filled in) so that what runs is what is shown.
    strategy.parameters = get_strategy(strategy.strategy_class).validate_parameters(strategy.parameters)
    with transaction.atomic():
        strategy.save()
        if resolved is not None:
            strategy.stocks.set(resolved)
    return strategy


def create_strategy(*, stocks: Iterable[Stock | str] = (), **values: Any) -> Strategy:
    """A new, validated Strategy row; ValidationError (field -> messages) when invalid."""
    strategy = Strategy()
    _apply(strategy, values)
    strategy = _save_validated(strategy, stocks)
    record_event("strategy.created", f"strategy {strategy.name} created", strategy=strategy)
    return strategy


def update_strategy(
    strategy: Strategy, *, stocks: Iterable[Stock | str] | None = None, **values: Any
) -> Strategy:
    """Change and re-validate a strategy; the row is unchanged when validation fails."""
    original = {field: getattr(strategy, field) for field in values}
    _apply(strategy, values)
    try:
        return _save_validated(strategy, stocks)
    except ValidationError:
        for field, value in original.items():
            setattr(strategy, field, value)
        raise


def set_active(strategy: Strategy, active: bool) -> Strategy:
    """Activate or deactivate; an active strategy must be valid and have stocks."""
    if active:
        strategy.full_clean()
        if not strategy.stocks.exists():
            raise ValidationError({"stocks": ["an active strategy needs at least one stock"]})
    if strategy.active == active:
        return strategy
    strategy.active = active
    strategy.save(update_fields=["active", "updated_at"])
    state = "activated" if active else "deactivated"
    record_event(f"strategy.{state}", f"strategy {strategy.name} {state}", strategy=strategy)
    return strategy


def activate(strategy: Strategy) -> Strategy:
    return set_active(strategy, True)


def deactivate(strategy: Strategy) -> Strategy:
    return set_active(strategy, False)


# --- signals ----------------------------------------------------------------------------
def _reasons(text: str) -> list[str]:
    return [part for part in text.split("; ") if part]


def signal_rows(
    strategy: Strategy,
    stock: Stock,
    frame: pd.DataFrame,
    instance: StrategyClass | None = None,
    since: datetime | None = None,
) -> list[TradeSignal]:
    """Unsaved TradeSignal rows for every signal in a ``Strategy.run`` frame (at or after ``since``)."""
    instance = instance or build_strategy(strategy)
    rows: list[TradeSignal] = []
    flags = frame[list(SIGNAL_COLUMNS)].to_numpy(dtype=bool)
    positions = flags.any(axis=1).nonzero()[0]
    for i in positions:
        timestamp = frame.index[i]
        if since is not None and timestamp < pd.Timestamp(since):
            continue
        snapshot = instance.indicator_snapshot(frame, int(i))
        close = frame["close"].iat[i]
        for c, signal_type in enumerate(SIGNAL_COLUMNS):
            if flags[i, c]:
                rows.append(
                    TradeSignal(
                        strategy=strategy,
                        stock=stock,
                        timestamp=timestamp.to_pydatetime(),
                        signal_type=signal_type,
                        price=Decimal(repr(float(close))),
                        reasons=_reasons(frame["reason"].iat[i]),
                        indicator_values=snapshot,
                    )
                )
    return rows


def evaluate_signals(
    strategy: Strategy,
    stock: Stock | str,
    *,
    bars: pd.DataFrame | None = None,
    since: datetime | None = None,
    latest_only: bool = False,
) -> list[TradeSignal]:
    """Run the strategy over ``stock``'s bars and store its signals (idempotent: a signal
    already stored for the same strategy, stock, bar and type is left alone).

    Returns the stored rows for the signals found (new or existing), oldest first, and
    publishes the new ones on the ``signals`` group after commit.
    """
    if isinstance(stock, str):
        stock = get_stock(stock)
    instance = build_strategy(strategy)
    if bars is None:
        bars = bars_frame(stock, strategy.timeframe)
    if bars.empty:
        return []
    frame = instance.run(bars)
    if latest_only:
        since = frame.index[-1]
    rows = signal_rows(strategy, stock, frame, instance, since)
    if not rows:
        return []
    keys = {(r.timestamp, r.signal_type) for r in rows}
    with transaction.atomic():
        existing = set(
            TradeSignal.objects.filter(
                strategy=strategy, stock=stock, timestamp__in={t for t, _ in keys}
            ).values_list("timestamp", "signal_type")
        )
        new = [r for r in rows if (r.timestamp, r.signal_type) not in existing]
        TradeSignal.objects.bulk_create(new, ignore_conflicts=True)
        stored = list(
            TradeSignal.objects.filter(strategy=strategy, stock=stock, timestamp__in={t for t, _ in keys})
            .select_related("stock")
            .order_by("timestamp", "id")
        )
    stored = [s for s in stored if (s.timestamp, s.signal_type) in keys]
    new_keys = {(r.timestamp, r.signal_type) for r in new}
    for signal in stored:
        if (signal.timestamp, signal.signal_type) in new_keys:
            publish(
                "signals",
                "signal.created",
                {
                    "id": signal.pk,
                    "strategy_id": strategy.pk,
                    "symbol": stock.symbol,
                    "timestamp": signal.timestamp.isoformat(),
                    "signal_type": signal.signal_type,
                    "price": str(signal.price),
                    "reasons": signal.reasons,
                },
            )
    return stored


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


def warmup_bars(instance: StrategyClass, settings: BacktestSettings) -> int:
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
) -> tuple[StrategyClass, BacktestSettings]:
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


def backtest_strategy_row(
    strategy: Strategy, start: datetime | None = None, end: datetime | None = None
) -> BacktestRun:
    """Create and run a backtest of a Strategy row with its own universe and risk settings."""
    run = create_backtest_run(
        strategy_class=strategy.strategy_class,
        parameters=strategy.parameters,
        symbols=list(strategy.stocks.values_list("symbol", flat=True)),
        timeframe=strategy.timeframe,
        start=start,
        end=end,
        settings=BacktestSettings.from_strategy(strategy),
        strategy=strategy,
    )
    return execute_backtest_run(run)


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
    publish("events", "backtest.finished", {"id": run.pk, "status": run.status, "metrics": run.metrics})
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
    base = dict(base_parameters or {})
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
        strategy_class, {**base, **points[0]}, symbols, timeframe, start, end, settings
    )
    warmup = warmup_bars(instance, settings_obj)
    for point in points:
        try:
            warmup = max(warmup, cls({**base, **point}).warmup)
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
            base_parameters=base,
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
            base_parameters=base,
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
