"""The event journal: write a StrategyEvent and broadcast it after commit."""

from __future__ import annotations

import logging
from typing import Any

from strategies.models import Severity, Strategy, StrategyEvent
from trading.broadcast import publish

logger = logging.getLogger("strategies.events")

_LOG_LEVELS = {
    Severity.DEBUG: logging.DEBUG,
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}


def record_event(
    event_type: str,
    message: str,
    *,
    strategy: Strategy | None = None,
    severity: str = Severity.INFO,
    **metadata: Any,
) -> StrategyEvent:
    """Journal one event (``event_type`` like ``order.rejected``), log it, and publish it on
    the ``events`` group once the surrounding transaction commits."""
    event = StrategyEvent.objects.create(
        strategy=strategy, event_type=event_type, severity=severity, message=message, metadata=metadata
    )
    logger.log(_LOG_LEVELS.get(severity, logging.INFO), "%s: %s", event_type, message)
    publish(
        "events",
        "event.created",
        {
            "id": event.pk,
            "strategy_id": strategy.pk if strategy else None,
            "strategy": strategy.name if strategy else None,
            "event_type": event_type,
            "severity": severity,
            "message": message,
            "metadata": metadata,
            "created_at": event.created_at.isoformat(),
        },
    )
    return event
