"""The event journal: write a StrategyEvent and broadcast it after commit."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from django.db.models.signals import post_save

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

_batch = threading.local()


def record_event(
    event_type: str,
    message: str,
    *,
    strategy: Strategy | None = None,
    severity: str = Severity.INFO,
    **metadata: Any,
) -> StrategyEvent:
    """Journal one event (``event_type`` like ``order.rejected``), log it, and publish it on
    the ``events`` group once the surrounding transaction commits.

    Inside :func:`journal_batch` the row is written with the others of the block, when the
    block ends (still inside its transaction); the returned event has no pk until then."""
    event = StrategyEvent(
        strategy=strategy, event_type=event_type, severity=severity, message=message, metadata=metadata
    )
    pending = getattr(_batch, "events", None)
    if pending is not None:
        pending.append(event)
        return event
    event.save(force_insert=True)
    _announce(event)
    return event


def _announce(event: StrategyEvent) -> None:
    strategy = event.strategy
    logger.log(_LOG_LEVELS.get(event.severity, logging.INFO), "%s: %s", event.event_type, event.message)
    publish(
        "events",
        "event.created",
        {
            "id": event.pk,
            "strategy_id": strategy.pk if strategy else None,
            "strategy": strategy.name if strategy else None,
            "event_type": event.event_type,
            "severity": event.severity,
            "message": event.message,
            "metadata": event.metadata,
            "created_at": event.created_at.isoformat(),
        },
    )


@contextlib.contextmanager
def journal_batch():
    """Write the events recorded in the block with one ``bulk_create`` when it ends.

    Use it *inside* the transaction that makes the changes the events record
    (``with transaction.atomic(), journal_batch():``), so each row still commits (or rolls
    back) with its change. Receivers of ``post_save`` (alerts) are told as for a save;
    the broadcasts go out after commit, in order. Nested blocks write with the outermost;
    a block left by an exception writes nothing (its transaction rolls back)."""
    if getattr(_batch, "events", None) is not None:
        yield
        return
    _batch.events = []
    try:
        yield
    except BaseException:
        _batch.events = None
        raise
    events, _batch.events = _batch.events, None
    if not events:
        return
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        StrategyEvent.objects.bulk_create(events)
        for event in events:
            post_save.send(
                sender=StrategyEvent,
                instance=event,
                created=True,
                update_fields=None,
                raw=False,
                using=event._state.db,
            )
    for event in events:
        _announce(event)
