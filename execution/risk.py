"""Pre-trade risk checks.

Every entry order passes :func:`check_entry` before its row is written; a failed rule
raises :class:`RiskRejected` and :func:`reject` journals it as a ``risk.rejected``
StrategyEvent whose message names the rule and the numbers. Exits and protective orders
are never blocked: they only reduce risk.

Limits (global ones in settings, per-strategy ones in ``Strategy.risk_settings``):

================================ ========================== ==============================
rule                             global setting             per-strategy key
================================ ========================== ==============================
kill switch                      ExecutionState kill_switch ``Strategy.kill_switch``
protection lock                  Protection rows            Protection rows
trading hours (XNYS calendar)    always                     ``trading_hours: false`` skips
max orders per minute            RISK_MAX_ORDERS_PER_MINUTE ``max_orders_per_minute``
max daily loss (fraction)        RISK_MAX_DAILY_LOSS        ``max_daily_loss``
one position per symbol          always                     ``allow_multiple_positions``
max open positions               RISK_MAX_OPEN_POSITIONS    ``Strategy.max_open_positions``
max position size (shares)       -                          ``max_position_shares``
max position size (% of equity)  RISK_MAX_POSITION_PCT      ``max_position_pct``
buying power                     always                     -
================================ ========================== ==============================

Protection locks (cooldown, stop-loss streak, max drawdown, daily loss) are written by
:mod:`execution.protections`; this module refuses entries while one is active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from execution.models import (
    OPEN_ORDER_STATUSES,
    EquitySnapshot,
    ExecutionState,
    Order,
    OrderPurpose,
    ProtectionKind,
    Trade,
    TradeStatus,
)
from execution.protections import active_protections, add_protection, calendar
from marketdata import clock
from marketdata.models import Stock
from marketdata.timeframes import is_intraday, offset
from strategies.events import record_event
from strategies.models import Severity, Strategy

KILL_SWITCH_KEY = "kill_switch"
ZERO = Decimal("0")


class RiskRejected(Exception):
    """An entry refused by a rule; ``rule`` is a stable name, the message says why."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        super().__init__(message)


@dataclass
class EntryCheck:
    """Everything the rules look at for one entry."""

    strategy: Strategy
    stock: Stock
    side: str
    quantity: Decimal
    price: Decimal  # the reference price (signal bar close)
    bar_time: datetime  # open time of the signal bar
    now: datetime  # the engine clock (bar close in a replay)
    equity: Decimal
    free_cash: Decimal
    timeframe: str = "1day"


def global_limit(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def strategy_limit(strategy: Strategy, key: str, default: Any = None) -> Any:
    return (strategy.risk_settings or {}).get(key, default)


# --- the kill switch -------------------------------------------------------------------------


def global_kill_switch() -> bool:
    row = ExecutionState.objects.filter(key=KILL_SWITCH_KEY).first()
    return bool(row and row.value.get("enabled"))


def set_global_kill_switch(enabled: bool, by: str = "") -> None:
    ExecutionState.objects.update_or_create(
        key=KILL_SWITCH_KEY,
        defaults={"value": {"enabled": enabled, "by": by, "at": clock.now().isoformat()}},
    )


# --- trading hours ----------------------------------------------------------------------------


def fill_session_check(bar_time: datetime, timeframe: str) -> None:
    """The order for a signal on the bar opening at ``bar_time`` fills at the next bar's
    open: for daily bars the next session must exist; intraday, the next bar must open
    while the exchange is open."""
    cal = calendar()
    if is_intraday(timeframe):
        fill_at = pd.Timestamp(bar_time) + offset(timeframe)
        if not cal.is_open_on_minute(fill_at):
            raise RiskRejected(
                "trading_hours", f"market closed at {fill_at:%Y-%m-%d %H:%M} UTC, when the order would fill"
            )
        return
    day = pd.Timestamp(bar_time).tz_convert(None).normalize()
    try:
        session = cal.date_to_session(day, direction="previous")
        cal.next_session(session)
    except Exception as exc:  # out of the calendar's range
        raise RiskRejected(
            "trading_hours", f"no XNYS session to fill a signal of {day:%Y-%m-%d}: {exc}"
        ) from None


# --- the checks -----------------------------------------------------------------------------


def open_entry_orders(strategy: Strategy | None = None):
    qs = Order.objects.filter(purpose=OrderPurpose.ENTRY, status__in=OPEN_ORDER_STATUSES)
    return qs.filter(strategy=strategy) if strategy is not None else qs


@dataclass
class Holdings:
    """Positions for the position rules: how many count against a limit, and the stocks
    with a position (or an entry on its way)."""

    count: int
    symbols: set[int]  # stock ids


def holdings(strategy: Strategy | None = None) -> Holdings:
    """Open trades not on their way out, plus entries on their way in (those without a
    trade yet count as a position), of one strategy or of all: two reads."""
    trades = Trade.objects.filter(status=TradeStatus.OPEN)
    if strategy is not None:
        trades = trades.filter(strategy=strategy)
    exiting = Order.objects.filter(
        purpose=OrderPurpose.EXIT, status__in=OPEN_ORDER_STATUSES, trade__status=TradeStatus.OPEN
    ).values("trade_id")
    held = list(trades.exclude(pk__in=exiting).values_list("stock_id", flat=True))
    entries = list(open_entry_orders(strategy).values_list("stock_id", "trade_id"))
    return Holdings(
        count=len(held) + sum(1 for _, trade_id in entries if trade_id is None),
        symbols={*held, *(stock_id for stock_id, _ in entries)},
    )


def _day_start_equity(now: datetime) -> Decimal | None:
    start = now.astimezone(timezone.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    snap = EquitySnapshot.objects.filter(timestamp__lt=start).order_by("-timestamp").first()
    return snap.equity if snap else None


def _next_day(now: datetime) -> datetime:
    return now.astimezone(timezone.UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def check_entry(c: EntryCheck) -> None:  # noqa: C901 - one rule after the other, in order
    """Raise RiskRejected for the first rule the entry breaks."""
    strategy, stock = c.strategy, c.stock
    if global_kill_switch():
        raise RiskRejected("kill_switch", "global kill switch is on: no new orders")
    if strategy.kill_switch:
        raise RiskRejected("kill_switch", f"kill switch of {strategy.name} is on: no new orders")
    # Protections count bars: a lock ending at bar e blocks signals of bars before e.
    lock = active_protections(strategy, stock, c.bar_time).order_by("-expires_at").first()
    if lock is not None:
        raise RiskRejected(
            "protection", f"{lock.kind} lock until {lock.expires_at:%Y-%m-%d %H:%M}: {lock.reason}"
        )
    if strategy_limit(strategy, "trading_hours", True):
        fill_session_check(c.bar_time, c.timeframe)

    per_strategy = strategy_limit(strategy, "max_orders_per_minute", 30)
    overall = global_limit("RISK_MAX_ORDERS_PER_MINUTE", 600)
    if per_strategy or overall:
        # both counts in one read
        window_start = c.now - timedelta(minutes=1)
        recent = Order.objects.filter(submitted_at__gt=window_start, submitted_at__lte=c.now).aggregate(
            overall=Count("pk"), mine=Count("pk", filter=Q(strategy=strategy))
        )
        if per_strategy and recent["mine"] >= int(per_strategy):
            raise RiskRejected(
                "max_orders_per_minute",
                f"{strategy.name} sent {per_strategy} orders in the last minute (limit)",
            )
        if overall and recent["overall"] >= int(overall):
            raise RiskRejected(
                "max_orders_per_minute", f"{overall} orders in the last minute across all strategies"
            )

    # The trading day is the signal bar's (UTC) day; a daily-loss lock lasts until the next.
    daily = global_limit("RISK_MAX_DAILY_LOSS", 0)
    daily_strategy = strategy_limit(strategy, "max_daily_loss")
    start_equity = _day_start_equity(c.bar_time) if daily or daily_strategy else None
    if daily and start_equity and start_equity > 0:
        loss = (start_equity - c.equity) / start_equity
        if loss >= Decimal(str(daily)):
            add_protection(
                ProtectionKind.DAILY_LOSS,
                f"daily loss {loss:.2%} reached the limit {Decimal(str(daily)):.2%}",
                _next_day(c.bar_time),
                now=c.now,
            )
            raise RiskRejected(
                "max_daily_loss",
                f"equity down {loss:.2%} today (limit {Decimal(str(daily)):.2%}): stopped for the day",
            )
    if daily_strategy and start_equity:
        day = c.bar_time.astimezone(timezone.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        realized = sum(
            Trade.objects.filter(strategy=strategy, exit_time__gte=day, exit_time__lte=c.now).values_list(
                "realized_pnl", flat=True
            ),
            ZERO,
        )
        limit = Decimal(str(daily_strategy)) * start_equity
        if -realized >= limit:
            add_protection(
                ProtectionKind.DAILY_LOSS,
                f"{strategy.name} lost {-realized:.2f} today (limit {limit:.2f})",
                _next_day(c.bar_time),
                strategy=strategy,
                now=c.now,
            )
            raise RiskRejected(
                "max_daily_loss",
                f"{strategy.name} lost {-realized:.2f} today (limit {limit:.2f}): stopped for the day",
            )

    mine = holdings(strategy)
    if not strategy_limit(strategy, "allow_multiple_positions", False) and stock.pk in mine.symbols:
        raise RiskRejected("one_position", f"{strategy.name} already has a position in {stock.symbol}")
    if mine.count >= strategy.max_open_positions:
        raise RiskRejected(
            "max_open_positions",
            f"{strategy.name} holds {mine.count} positions (limit {strategy.max_open_positions})",
        )
    overall_positions = global_limit("RISK_MAX_OPEN_POSITIONS", 0)
    if overall_positions:
        total = holdings().count
        if total >= int(overall_positions):
            raise RiskRejected(
                "max_open_positions", f"{total} positions open overall (limit {overall_positions})"
            )

    max_shares = strategy_limit(strategy, "max_position_shares")
    if max_shares and c.quantity > Decimal(str(max_shares)):
        raise RiskRejected(
            "max_position_size", f"{c.quantity:f} shares of {stock.symbol} exceed the limit of {max_shares}"
        )
    value = c.quantity * c.price
    for source, pct in (
        (strategy.name, strategy_limit(strategy, "max_position_pct")),
        ("global", global_limit("RISK_MAX_POSITION_PCT", 0)),
    ):
        if pct and c.equity > 0 and value / c.equity > Decimal(str(pct)):
            raise RiskRejected(
                "max_position_size",
                f"{stock.symbol} position {value:.2f} is {value / c.equity:.1%} of equity "
                f"(limit {Decimal(str(pct)):.1%}, {source})",
            )
    if value > c.free_cash:
        raise RiskRejected(
            "buying_power", f"{stock.symbol} position {value:.2f} exceeds the buying power {c.free_cash:.2f}"
        )


def reject(strategy: Strategy | None, stock: Stock, error: RiskRejected, **metadata: Any) -> None:
    """Journal a rejection as a ``risk.rejected`` StrategyEvent."""
    record_event(
        "risk.rejected",
        f"{stock.symbol}: {error}",
        strategy=strategy,
        severity=Severity.WARNING,
        rule=error.rule,
        symbol=stock.symbol,
        **metadata,
    )
