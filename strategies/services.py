"""Business operations on strategies: create/update with validation, activate, evaluate and
store signals. (Backtests are execution's: ``execution.backtest.services``.)"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction

from marketdata.models import Stock
from marketdata.selectors import bars_frame, get_stock
from strategies import base
from strategies.base import SIGNAL_COLUMNS
from strategies.events import record_event
from strategies.models import Strategy, TradeSignal
from strategies.registry import get_strategy
from strategies.signals import trade_signal_created

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
def build_strategy(strategy: Strategy) -> base.Strategy:
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
    instance: base.Strategy | None = None,
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
    sends ``trade_signal_created`` for the new ones (``trading`` broadcasts them after commit).
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
            trade_signal_created.send(sender=TradeSignal, trade_signal=signal)
    return stored
