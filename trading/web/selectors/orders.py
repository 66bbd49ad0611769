"""The order list."""

from __future__ import annotations

from django.db.models import QuerySet

from execution.models import OPEN_ORDER_STATUSES, Order


def orders(status: str = "", strategy_id: int | None = None, symbol: str = "") -> QuerySet:
    qs = Order.objects.select_related("strategy", "stock", "trade")
    if status == "open":
        qs = qs.filter(status__in=OPEN_ORDER_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if symbol:
        qs = qs.filter(stock__symbol__iexact=symbol)
    return qs
