"""The overview page and its resync endpoint: account, equity curve, strategies, engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from execution import risk
from execution.models import EquitySnapshot, Trade, TradeStatus
from execution.selectors import Position, equity_curve, open_positions, starting_cash
from trading.health import engine_status
from trading.web.presenters import epoch, event_dict, position_dict, signal_dict
from trading.web.selectors.events import latest_events
from trading.web.selectors.strategies import latest_signals, strategies_with_state

ZERO = Decimal("0")


@dataclass
class AccountSummary:
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    day_pnl: Decimal
    open_positions: int
    trades_today: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "equity": str(self.equity),
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
            "day_pnl": str(self.day_pnl),
            "open_positions": self.open_positions,
            "trades_today": self.trades_today,
        }


def account_summary(positions: list[Position] | None = None, now: datetime | None = None) -> AccountSummary:
    """Equity from execution.selectors.equity_now (cash + positions at their last price).

    Day P&L is equity now minus the last equity snapshot taken before midnight UTC; without
    such a snapshot (a fresh account) it is the realised P&L of trades closed today plus
    the unrealised P&L of positions opened today.
    """
    positions = open_positions() if positions is None else positions
    now = now or timezone.now()
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    # execution.selectors.equity_now's formula: starting cash + realised P&L - fees of open
    # trades + unrealised P&L (computed here from the positions already marked).
    realized = Trade.objects.filter(status=TradeStatus.CLOSED).aggregate(p=Sum("realized_pnl"))["p"] or ZERO
    open_fees = Trade.objects.filter(status=TradeStatus.OPEN).aggregate(f=Sum("fees"))["f"] or ZERO
    unrealized = sum((p.unrealized_pnl or ZERO for p in positions), ZERO)
    equity = starting_cash() + realized - open_fees + unrealized
    before_today = EquitySnapshot.objects.filter(timestamp__lt=midnight).order_by("-timestamp").first()
    if before_today is not None:
        day_pnl = equity - before_today.equity
    else:
        closed_today = Trade.objects.filter(status=TradeStatus.CLOSED, exit_time__gte=midnight)
        realized_today = closed_today.aggregate(s=Sum("realized_pnl"))["s"] or ZERO
        opened_today = (p.unrealized_pnl or ZERO for p in positions if p.trade.entry_time >= midnight)
        day_pnl = realized_today + sum(opened_today, ZERO)
    return AccountSummary(
        equity=equity,
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        day_pnl=day_pnl,
        open_positions=len(positions),
        trades_today=Trade.objects.filter(entry_time__gte=midnight).count(),
    )


def equity_history(limit: int = 2000) -> list[dict[str, Any]]:
    """The account's equity curve: the engine's snapshots when there are any, else the
    equity after each closed trade."""
    rows = equity_curve(max_points=limit)
    if rows:
        return [{"time": epoch(ts), "equity": float(value)} for ts, value in rows]
    return realized_equity_curve(limit)


def realized_equity_curve(limit: int = 2000) -> list[dict[str, Any]]:
    """Equity after each closed trade, oldest first (the live account's curve)."""
    rows = (
        Trade.objects.filter(status=TradeStatus.CLOSED, exit_time__isnull=False)
        .order_by("exit_time", "id")
        .values_list("exit_time", "realized_pnl")
    )
    equity = starting_cash()
    curve: list[dict[str, Any]] = []
    for exit_time, pnl in rows:
        equity += pnl or ZERO
        curve.append({"time": epoch(exit_time), "equity": float(equity)})
    return curve[-limit:]


def global_kill_switch() -> bool:
    """Whether the global kill switch is on (new entries refused everywhere)."""
    return risk.global_kill_switch()


def engine() -> dict[str, Any]:
    """The engine's heartbeat as /health reports it (running, state, seconds since beat)."""
    return engine_status()


def overview() -> dict[str, Any]:
    """Everything the overview page shows, as JSON-ready data."""
    positions = open_positions()
    return {
        "engine": engine(),
        "account": account_summary(positions).as_dict(),
        "positions": [position_dict(p) for p in positions],
        "strategies": strategies_with_state(),
        "kill_switch": global_kill_switch(),
        "signals": [signal_dict(s) for s in latest_signals(20)],
        "events": [event_dict(e) for e in latest_events(30)],
    }
