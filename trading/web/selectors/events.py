"""The journal as the pages read it: the event list and the newest events of a page."""

from __future__ import annotations

from django.db.models import QuerySet

from strategies.models import Strategy, StrategyEvent


def latest_events(limit: int = 30, strategy: Strategy | None = None) -> list[StrategyEvent]:
    qs = StrategyEvent.objects.select_related("strategy")
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    return list(qs[:limit])


def events(severity: str = "", event_type: str = "", strategy_id: int | None = None) -> QuerySet:
    qs = StrategyEvent.objects.select_related("strategy")
    if severity:
        qs = qs.filter(severity=severity)
    if event_type:
        qs = qs.filter(event_type=event_type)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    return qs


def event_types() -> list[str]:
    return list(StrategyEvent.objects.order_by().values_list("event_type", flat=True).distinct()[:200])
