"""Pre-trade risk checks and protections (database locks).

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

Protections (cooldown, stop-loss streak, max drawdown) are decided by the same pure
rules as the backtester (:mod:`execution.protection_rules`), counted in bars of the
strategy's timeframe, and stored as :class:`~execution.models.Protection` rows that block
entries until they expire or a trader deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
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
    Protection,
    ProtectionKind,
    Trade,
    TradeStatus,
)
from execution.protection_rules import (
    cooldown_until,
    drawdown_triggered,
    pause_until,
    stop_streak_triggered,
    window_drawdown,
)
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
        defaults={"value": {"enabled": enabled, "by": by, "at": timezone.now().isoformat()}},
    )


# --- the calendar ---------------------------------------------------------------------------


@cache
def calendar():
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS", start="1990-01-01")


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


# --- bar arithmetic (protections count bars) ------------------------------------------------


def bar_index(ts: datetime, timeframe: str) -> int:
    """A monotone bar number: XNYS sessions for daily bars, bar lengths since the epoch
    intraday (so intraday windows count the night as bars; documented)."""
    if is_intraday(timeframe):
        return int(pd.Timestamp(ts).timestamp() // pd.Timedelta(offset(timeframe)).total_seconds())
    cal = calendar()
    day = pd.Timestamp(ts).tz_convert(None).normalize()
    return int(cal.sessions.searchsorted(day))


def bar_time(index: int, timeframe: str) -> datetime:
    """The open time of bar ``index`` (the inverse of :func:`bar_index`)."""
    if is_intraday(timeframe):
        seconds = pd.Timedelta(offset(timeframe)).total_seconds()
        return datetime.fromtimestamp(index * seconds, tz=timezone.UTC)
    sessions = calendar().sessions
    if index >= len(sessions):
        return datetime.max.replace(tzinfo=timezone.UTC)
    return sessions[index].to_pydatetime().replace(tzinfo=timezone.UTC)


# --- protections ----------------------------------------------------------------------------


def active_protections(strategy: Strategy | None, stock: Stock | None, now: datetime):
    qs = Protection.objects.filter(expires_at__gt=now)
    qs = qs.filter(Q(strategy__isnull=True) | Q(strategy=strategy))
    return qs.filter(Q(stock__isnull=True) | Q(stock=stock))


def add_protection(
    kind: str,
    reason: str,
    expires_at: datetime,
    *,
    strategy: Strategy | None = None,
    stock: Stock | None = None,
    now: datetime | None = None,
) -> Protection | None:
    """Store a lock (unless one of the same kind and scope already lasts as long) and
    journal it as ``protection.created``."""
    now = now or timezone.now()
    if Protection.objects.filter(
        kind=kind, strategy=strategy, stock=stock, expires_at__gte=expires_at
    ).exists():
        return None
    protection = Protection.objects.create(
        kind=kind, reason=reason, strategy=strategy, stock=stock, created_at=now, expires_at=expires_at
    )
    scope = " ".join(
        x for x in (strategy.name if strategy else "all strategies", stock.symbol if stock else "") if x
    )
    record_event(
        "protection.created",
        f"{kind} lock on {scope} until {expires_at:%Y-%m-%d %H:%M}: {reason}",
        strategy=strategy,
        severity=Severity.WARNING,
        protection_id=protection.pk,
        kind=kind,
        expires_at=expires_at.isoformat(),
    )
    return protection


def _backtest_settings(strategy: Strategy):
    from strategies.backtest.settings import BacktestSettings

    return BacktestSettings.from_strategy(strategy)


def protections_after_exit(trade: Trade) -> list[Protection]:
    """Cooldown on the symbol and the stop-loss guard, after ``trade`` closed."""
    strategy = trade.strategy
    if strategy is None or trade.exit_time is None:
        return []
    settings_ = _backtest_settings(strategy)
    tf = strategy.timeframe
    exit_bar = bar_index(trade.exit_time, tf)
    created = []
    lock = cooldown_until(exit_bar, settings_.cooldown_bars)
    if lock:
        p = add_protection(
            ProtectionKind.COOLDOWN,
            f"cooldown of {settings_.cooldown_bars} bars after the exit of trade {trade.pk}",
            bar_time(lock, tf),
            strategy=strategy,
            stock=trade.stock,
            now=trade.exit_time,
        )
        created.append(p)
    if trade.exit_reason == "stop_loss" and settings_.stoploss_guard_limit > 0:
        window = settings_.stoploss_guard_window
        since = bar_time(max(exit_bar - window + 1, 0), tf)
        times = Trade.objects.filter(
            strategy=strategy, exit_reason="stop_loss", exit_time__gte=since, exit_time__lte=trade.exit_time
        ).values_list("exit_time", flat=True)
        bars = np.array(sorted(bar_index(t, tf) for t in times), dtype=np.int64)
        if stop_streak_triggered(bars, len(bars), exit_bar, window, settings_.stoploss_guard_limit):
            created.append(
                add_protection(
                    ProtectionKind.STOPLOSS_STREAK,
                    f"{len(bars)} stop-losses within {window} bars (limit {settings_.stoploss_guard_limit})",
                    bar_time(pause_until(exit_bar, settings_.stoploss_guard_pause), tf),
                    strategy=strategy,
                    now=trade.exit_time,
                )
            )
    return [p for p in created if p]


def drawdown_protection(
    strategy: Strategy, now_bar: datetime, current_equity: Decimal | None = None
) -> Protection | None:
    """The max-drawdown rule over the equity snapshots of the last ``window`` bars (the
    newest being ``current_equity`` at ``now_bar`` when given)."""
    settings_ = _backtest_settings(strategy)
    if settings_.max_drawdown <= 0 or settings_.max_drawdown_window <= 0:
        return None
    tf = strategy.timeframe
    now_index = bar_index(now_bar, tf)
    since = bar_time(max(now_index - settings_.max_drawdown_window + 1, 0), tf)
    upto = EquitySnapshot.objects.filter(timestamp__gte=since)
    upto = (
        upto.filter(timestamp__lt=now_bar)
        if current_equity is not None
        else upto.filter(timestamp__lte=now_bar)
    )
    values = list(upto.order_by("timestamp").values_list("equity", flat=True))
    if current_equity is not None:
        values.append(current_equity)
    if not values:
        return None
    equity = np.array([float(v) for v in values])
    last = len(equity) - 1
    if not drawdown_triggered(equity, last, len(equity), settings_.max_drawdown):
        return None
    depth = window_drawdown(equity, last, len(equity))
    return add_protection(
        ProtectionKind.MAX_DRAWDOWN,
        f"equity {depth:.1%} below its peak of the last {settings_.max_drawdown_window} bars "
        f"(limit {settings_.max_drawdown:.1%})",
        bar_time(pause_until(now_index, settings_.max_drawdown_pause), tf),
        strategy=strategy,
        now=now_bar,
    )


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
