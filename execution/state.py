"""The order state machine: the only code that sets ``Order.status``.

States (``OrderStatus``)::

    pending_submit --> submitted --> partially_filled --> filled
          |  \\            |  \\             |
          |   \\           |   +--> cancelled <+
          |    +--> unknown (submit outcome lost) --> any broker-reported state
          +--> rejected / cancelled (never sent)

``filled``, ``cancelled`` and ``rejected`` are terminal. Reporting the state an order is
already in is a no-op (brokers repeat themselves); anything not in :data:`TRANSITIONS`
is an error: :class:`IllegalTransition` is raised and journaled as an
``order.illegal_transition`` event, and the order keeps its status.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from execution.models import Order, OrderStatus
from execution.signals import order_updated
from strategies.events import record_event
from strategies.models import Severity

S = OrderStatus

TERMINAL = frozenset({S.FILLED, S.CANCELLED, S.REJECTED})

TRANSITIONS: dict[str, frozenset[str]] = {
    # A fill may be reported before the acknowledgement, and reconciliation may adopt an
    # order the broker already filled, so pending_submit can go straight to a fill state.
    S.PENDING_SUBMIT: frozenset(
        {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELLED, S.UNKNOWN}
    ),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED}),
    # Only a targeted query or reconciliation moves an order out of unknown, to whatever
    # the broker says; "cancelled" also covers "the broker never got it".
    S.UNKNOWN: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}


class IllegalTransition(Exception):
    """An order status change the state machine does not allow."""

    def __init__(self, order: Order, new_status: str):
        self.order = order
        self.old_status = order.status
        self.new_status = new_status
        super().__init__(f"order {order.client_order_id}: illegal transition {order.status} -> {new_status}")


def can_transition(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def transition(
    order: Order,
    new_status: str,
    *,
    reason: str = "",
    at: datetime | None = None,
    save: bool = True,
) -> bool:
    """Move ``order`` to ``new_status``; journal it and send ``order_updated``.

    Returns False when the order is already in that state (a no-op, except that
    ``partially_filled`` -> ``partially_filled`` is a real step: more was filled).
    Raises :class:`IllegalTransition` (after journaling it) for anything else not allowed.
    Callers hold the order row locked (``select_for_update``) inside a transaction.
    """
    old = order.status
    if old == new_status and new_status != S.PARTIALLY_FILLED:
        return False
    if not can_transition(old, new_status):
        error = IllegalTransition(order, new_status)
        record_event(
            "order.illegal_transition",
            str(error) + (f" ({reason})" if reason else ""),
            strategy=order.strategy,
            severity=Severity.ERROR,
            order_id=order.pk,
            client_order_id=order.client_order_id,
            old_status=old,
            new_status=new_status,
        )
        raise error
    at = at or timezone.now()
    order.status = new_status
    fields = ["status", "updated_at"]
    if new_status == S.SUBMITTED and order.submitted_at is None:
        order.submitted_at = at
        fields.append("submitted_at")
    elif new_status == S.FILLED:
        order.filled_at = at
        fields.append("filled_at")
    elif new_status == S.CANCELLED:
        order.cancelled_at = at
        fields.append("cancelled_at")
    if new_status in (S.REJECTED, S.CANCELLED, S.UNKNOWN) and reason:
        order.reject_reason = reason[:2000]
        fields.append("reject_reason")
    if save:
        order.save(update_fields=fields)
    severity = Severity.WARNING if new_status in (S.REJECTED, S.UNKNOWN) else Severity.INFO
    message = (
        f"{order.side} {order.quantity.normalize():f} {order.stock.symbol} {order.order_type} "
        f"({order.purpose}) {old} -> {new_status}"
    )
    if reason:
        message += f": {reason}"
    record_event(
        f"order.{new_status}",
        message,
        strategy=order.strategy,
        severity=severity,
        order_id=order.pk,
        client_order_id=order.client_order_id,
        old_status=old,
        new_status=new_status,
    )
    order_updated.send(sender=Order, order=order)
    return True
