"""The event journal, the whole system's log: write a StrategyEvent and log it.

Every app records here (strategies is the lowest app that holds models the journal
points at). The journal only writes rows and log lines; for the pages it sends
``strategies.signals.event_recorded`` per row, which ``trading`` broadcasts after commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from django.db.models.signals import post_save

from strategies.models import Severity, Strategy, StrategyEvent
from strategies.signals import event_recorded

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
    """Journal one event (``event_type`` like ``order.rejected``), log it, and send
    ``event_recorded`` (``trading`` publishes it on the ``events`` group after commit).

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
    logger.log(_LOG_LEVELS.get(event.severity, logging.INFO), "%s: %s", event.event_type, event.message)
    event_recorded.send(sender=StrategyEvent, event=event)


@contextlib.contextmanager
def journal_batch():
    """Write the events recorded in the block with one ``bulk_create`` when it ends.

    Use it *inside* the transaction that makes the changes the events record
    (``with transaction.atomic(), journal_batch():``), so each row still commits (or rolls
    back) with its change. Receivers of ``post_save`` (alerts) are told as for a save;
    ``event_recorded`` follows for each, in order. Nested blocks write with the outermost;
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
