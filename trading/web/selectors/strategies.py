"""The strategy list and a strategy's page: state, locks, latest signals and backtest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from execution.models import BacktestRun, Protection, TradeStatus
from strategies.models import Strategy, TradeSignal
from trading.web.presenters import strategy_state


def strategies_with_state() -> list[dict[str, Any]]:
    """Every strategy with its open trade count and last signal time (for the overview)."""
    now = timezone.now()
    locks: dict[int | None, datetime] = {}
    for strategy_id, expires in Protection.objects.filter(expires_at__gt=now).values_list(
        "strategy_id", "expires_at"
    ):
        locks[strategy_id] = max(expires, locks.get(strategy_id, expires))
    rows = Strategy.objects.annotate(
        open_trades=Count("trades", filter=Q(trades__status=TradeStatus.OPEN), distinct=True),
        last_signal=Max("signals__timestamp"),
    ).order_by("-active", "name")
    return [
        {
            "id": s.pk,
            "name": s.name,
            "strategy_class": s.strategy_class,
            "timeframe": s.timeframe,
            "active": s.active,
            "kill_switch": s.kill_switch,
            "open_trades": s.open_trades,
            "last_signal": s.last_signal.isoformat() if s.last_signal else None,
            "state": strategy_state(s),
            "locked_until": (locks.get(s.pk) or locks.get(None)).isoformat()
            if (locks.get(s.pk) or locks.get(None))
            else None,
        }
        for s in rows
    ]


def latest_signals(limit: int = 20, strategy: Strategy | None = None) -> list[TradeSignal]:
    qs = TradeSignal.objects.select_related("strategy", "stock").order_by("-created_at", "-id")
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    return list(qs[:limit])


def latest_backtest(strategy: Strategy) -> BacktestRun | None:
    return strategy.backtests.order_by("-created_at", "-id").first()
