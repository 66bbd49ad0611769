"""The trade list: filters and totals. A trade's own page reads execution.reports.trade_story
and the chart in trading.web.selectors.stocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from execution.models import Trade, TradeStatus

ZERO = Decimal("0")


@dataclass
class TradeFilters:
    strategy: int | None = None
    symbol: str = ""
    start: date | None = None
    end: date | None = None
    outcome: str = ""  # "", "win", "loss", "open"
    status: str = ""


def filtered_trades(filters: TradeFilters) -> QuerySet:
    qs = Trade.objects.select_related("strategy", "stock")
    if filters.strategy:
        qs = qs.filter(strategy_id=filters.strategy)
    if filters.symbol:
        qs = qs.filter(stock__symbol__iexact=filters.symbol)
    if filters.start:
        qs = qs.filter(entry_time__date__gte=filters.start)
    if filters.end:
        qs = qs.filter(entry_time__date__lte=filters.end)
    if filters.outcome == "win":
        qs = qs.filter(status=TradeStatus.CLOSED, realized_pnl__gt=0)
    elif filters.outcome == "loss":
        qs = qs.filter(status=TradeStatus.CLOSED, realized_pnl__lte=0)
    elif filters.outcome == "open":
        qs = qs.filter(status=TradeStatus.OPEN)
    return qs


def trade_totals(qs: QuerySet) -> dict[str, Any]:
    agg = qs.aggregate(
        count=Count("id"),
        closed=Count("id", filter=Q(status=TradeStatus.CLOSED)),
        wins=Count("id", filter=Q(status=TradeStatus.CLOSED, realized_pnl__gt=0)),
        pnl=Sum("realized_pnl"),
        fees=Sum("fees"),
        gross_win=Sum("realized_pnl", filter=Q(realized_pnl__gt=0)),
        gross_loss=Sum("realized_pnl", filter=Q(realized_pnl__lt=0)),
    )
    closed = agg["closed"] or 0
    wins = agg["wins"] or 0
    gross_loss = -(agg["gross_loss"] or ZERO)
    return {
        "count": agg["count"] or 0,
        "closed": closed,
        "open": (agg["count"] or 0) - closed,
        "wins": wins,
        "losses": closed - wins,
        "win_rate": (wins / closed) if closed else None,
        "pnl": agg["pnl"] or ZERO,
        "fees": agg["fees"] or ZERO,
        "profit_factor": (float((agg["gross_win"] or ZERO) / gross_loss) if gross_loss else None),
    }
