"""Protections: database locks that block a strategy's (or a symbol's) entries for a while.

Cooldown, stop-loss streak and max drawdown are decided by the same pure rules as the
backtester (:mod:`execution.protection_rules`), counted in bars of the strategy's
timeframe (XNYS sessions for daily bars), with the numbers of the strategy's risk profile,
and stored as :class:`~execution.models.Protection` rows that block entries
(:func:`execution.risk.check_entry`) until they expire or a trader deletes them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import cache

import numpy as np
import pandas as pd
from django.db.models import Q
from django.utils import timezone

from execution.models import EquitySnapshot, Protection, ProtectionKind, Trade
from execution.protection_rules import (
    cooldown_until,
    drawdown_triggered,
    pause_until,
    stop_streak_triggered,
    window_drawdown,
)
from marketdata import clock
from marketdata.models import Stock
from marketdata.timeframes import is_intraday, offset
from strategies.events import record_event
from strategies.models import Severity, Strategy
from strategies.risk_profile import RiskProfile

# --- the calendar (XNYS) --------------------------------------------------------------------


@cache
def calendar():
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS", start="1990-01-01")


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
    now = now or clock.now()
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


def protections_after_exit(trade: Trade) -> list[Protection]:
    """Cooldown on the symbol and the stop-loss guard, after ``trade`` closed."""
    strategy = trade.strategy
    if strategy is None or trade.exit_time is None:
        return []
    profile = RiskProfile.from_strategy(strategy)
    tf = strategy.timeframe
    exit_bar = bar_index(trade.exit_time, tf)
    created = []
    lock = cooldown_until(exit_bar, profile.cooldown_bars)
    if lock:
        p = add_protection(
            ProtectionKind.COOLDOWN,
            f"cooldown of {profile.cooldown_bars} bars after the exit of trade {trade.pk}",
            bar_time(lock, tf),
            strategy=strategy,
            stock=trade.stock,
            now=trade.exit_time,
        )
        created.append(p)
    if trade.exit_reason == "stop_loss" and profile.stoploss_guard_limit > 0:
        window = profile.stoploss_guard_window
        since = bar_time(max(exit_bar - window + 1, 0), tf)
        times = Trade.objects.filter(
            strategy=strategy, exit_reason="stop_loss", exit_time__gte=since, exit_time__lte=trade.exit_time
        ).values_list("exit_time", flat=True)
        bars = np.array(sorted(bar_index(t, tf) for t in times), dtype=np.int64)
        if stop_streak_triggered(bars, len(bars), exit_bar, window, profile.stoploss_guard_limit):
            created.append(
                add_protection(
                    ProtectionKind.STOPLOSS_STREAK,
                    f"{len(bars)} stop-losses within {window} bars (limit {profile.stoploss_guard_limit})",
                    bar_time(pause_until(exit_bar, profile.stoploss_guard_pause), tf),
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
    profile = RiskProfile.from_strategy(strategy)
    if profile.max_drawdown <= 0 or profile.max_drawdown_window <= 0:
        return None
    tf = strategy.timeframe
    now_index = bar_index(now_bar, tf)
    since = bar_time(max(now_index - profile.max_drawdown_window + 1, 0), tf)
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
    if not drawdown_triggered(equity, last, len(equity), profile.max_drawdown):
        return None
    depth = window_drawdown(equity, last, len(equity))
    return add_protection(
        ProtectionKind.MAX_DRAWDOWN,
        f"equity {depth:.1%} below its peak of the last {profile.max_drawdown_window} bars "
        f"(limit {profile.max_drawdown:.1%})",
        bar_time(pause_until(now_index, profile.max_drawdown_pause), tf),
        strategy=strategy,
        now=now_bar,
    )
