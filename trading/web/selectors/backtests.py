"""The backtest list and the side-by-side comparison."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from execution.models import BacktestRun


def backtests(strategy_id: int | None = None, status: str = "") -> QuerySet:
    qs = BacktestRun.objects.select_related("strategy").defer("equity_curve", "trades")
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def backtests_by_ids(ids: Iterable[int]) -> list[BacktestRun]:
    wanted = list(dict.fromkeys(ids))[:6]
    found = {r.pk: r for r in BacktestRun.objects.filter(pk__in=wanted).select_related("strategy")}
    return [found[i] for i in wanted if i in found]
