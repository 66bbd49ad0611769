"""What the broker says back, applied: status reports through the state machine, fills
(exactly once, with their trade bookkeeping), late commission reports, connection events.

The engine hands each poll's events to :class:`EventApplier`; what the touched orders
imply for others (protection, sibling cancels) is :func:`execution.exits.after_events`.
"""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists

from execution import trades as trade_book
from execution.brokers.base import BrokerEvent, CommissionUpdate, ConnectionEvent, FillReport, OrderUpdate
from execution.models import Fill, Order, OrderStatus, Trade
from execution.order_lifecycle import PRICE_STEP
from execution.signals import fill_created
from execution.state import IllegalTransition, transition
from strategies.events import journal_batch, record_event
from strategies.models import Severity

logger = logging.getLogger(__name__)
ZERO = Decimal("0")
S = OrderStatus


def _is_stale(current: str, reported: str) -> bool:
    """A report that says nothing new: the state itself, "submitted" after fills, or a
    fill state the fill rows already moved the order to (or past)."""
    if current == reported and reported != S.PARTIALLY_FILLED:
        return True
    if reported == S.SUBMITTED and current in (S.PARTIALLY_FILLED, S.FILLED):
        return True
    return reported == S.PARTIALLY_FILLED and current in (S.PARTIALLY_FILLED, S.FILLED)


def apply_order_update(update: OrderUpdate, known: dict[str, tuple[str, str]] | None = None) -> Order | None:
    """A broker status report, through the state machine. Stale reports (``submitted``
    after fills) are ignored; illegal ones are journaled and change nothing.

    ``known`` maps client order ids to (status, broker order id) as read for a whole poll
    of events (:class:`EventApplier`); without it the order is read here."""
    # Brokers repeat themselves (an acknowledged order reported "submitted", a filled one
    # "filled" after its fill): settle those with one read, without a lock.
    if known is not None and update.client_order_id in known:
        current = known[update.client_order_id]
    else:
        current = (
            Order.objects.filter(client_order_id=update.client_order_id)
            .values_list("status", "broker_order_id")
            .first()
        )
    if is_stale_report(current, update):
        return None
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("stock", "strategy")
            .filter(client_order_id=update.client_order_id)
            .first()
        )
        if order is None:
            record_event(
                "order.unknown_to_database",
                f"broker reports {update.status} for {update.client_order_id!r}, which the database "
                "does not know",
                severity=Severity.WARNING,
                client_order_id=update.client_order_id,
                broker_order_id=update.broker_order_id,
            )
            return None
        if update.broker_order_id and not order.broker_order_id:
            order.broker_order_id = update.broker_order_id
            order.save(update_fields=["broker_order_id", "updated_at"])
        status = update.status
        if _is_stale(order.status, status):
            return order
        try:
            transition(order, status, reason=update.message, at=update.timestamp)
        except IllegalTransition:
            return order
    return order


def is_stale_report(current: tuple[str, str] | None, update: OrderUpdate) -> bool:
    """Whether a status report says nothing new about an order whose (status, broker order
    id) is ``current``: a report that would also set a missing broker id is not stale."""
    if current is None:
        return False
    status, broker_order_id = current
    if update.broker_order_id and not broker_order_id:
        return False
    return _is_stale(status, update.status)


FILL_TOTAL_FIELDS = ["filled_quantity", "avg_fill_price", "commission", "updated_at"]


def _refresh_fill_totals(order: Order, save: bool = True) -> None:
    """Filled quantity, average price and commission again from the order's fill rows."""
    fills = list(order.fills.values_list("quantity", "price", "commission"))
    quantity = sum((q for q, _, _ in fills), ZERO)
    value = sum((q * p for q, p, _ in fills), ZERO)
    order.filled_quantity = min(quantity, order.quantity)
    order.avg_fill_price = (value / quantity).quantize(PRICE_STEP) if quantity else None
    order.commission = sum((c for _, _, c in fills), ZERO)
    if save:
        order.save(update_fields=FILL_TOTAL_FIELDS)


def apply_fill(report: FillReport) -> Fill | None:
    """Record one execution, exactly once; moves the order and its trade on.

    Returns the new Fill, or None when it was already applied or its order is unknown."""
    try:
        # the fill's journal rows (order step, fill, trade) in one insert, in its transaction
        with transaction.atomic(), journal_batch():
            # the order, locked, and whether this execution is already in (one read)
            order = (
                Order.objects.select_for_update(of=("self",))
                .select_related("stock", "strategy", "trade")
                .annotate(fill_applied=Exists(Fill.objects.filter(execution_id=report.execution_id)))
                .filter(client_order_id=report.client_order_id)
                .first()
            )
            if order is None:
                record_event(
                    "fill.unknown_order",
                    f"execution {report.execution_id} for unknown order {report.client_order_id!r} "
                    f"({report.side} {report.quantity} {report.symbol} @ {report.price}) needs a look",
                    severity=Severity.ERROR,
                    execution_id=report.execution_id,
                    client_order_id=report.client_order_id,
                )
                return None
            if order.fill_applied:
                return None
            fill = Fill.objects.create(
                order=order,
                execution_id=report.execution_id,
                timestamp=report.timestamp,
                quantity=report.quantity,
                price=report.price,
                commission=report.commission or ZERO,
            )
            _refresh_fill_totals(order, save=False)
            complete = order.filled_quantity >= order.quantity
            # An illegal step is journaled; the money moved all the same, so the fill counts.
            with contextlib.suppress(IllegalTransition):
                transition(
                    order, S.FILLED if complete else S.PARTIALLY_FILLED, at=report.timestamp, save=False
                )
            record_event(
                "fill.applied",
                f"{report.side} {report.quantity.normalize():f} {order.stock.symbol} @ {report.price} "
                f"({order.client_order_id}, execution {report.execution_id})",
                strategy=order.strategy,
                order_id=order.pk,
                execution_id=report.execution_id,
            )
            fill_created.send(sender=Fill, order=order, fill=fill)
            trade_book.on_fill(order, fill)
            # one write of the order: totals, status step, the trade an entry opened
            order.save(update_fields=[*FILL_TOTAL_FIELDS, "status", "filled_at", "trade"])
    except IntegrityError:
        return None  # applied concurrently: the unique execution id did its job
    return fill


def apply_commission(update: CommissionUpdate) -> Fill | None:
    """A commission report that arrived after its fill: the fill, order and trade fees."""
    with transaction.atomic():
        fill = (
            Fill.objects.select_for_update(of=("self",))
            .select_related("order", "order__trade", "order__stock")
            .filter(execution_id=update.execution_id)
            .first()
        )
        if fill is None:
            logger.info("commission for unknown execution %s (fill not applied yet)", update.execution_id)
            return None
        if fill.commission == update.commission:
            return fill
        fill.commission = update.commission
        fill.save(update_fields=["commission"])
        _refresh_fill_totals(fill.order)
        if fill.order.trade_id:
            trade_book.refresh_fees(Trade.objects.select_related("stock").get(pk=fill.order.trade_id))
    return fill


def apply_event(event: BrokerEvent, known: dict[str, tuple[str, str]] | None = None) -> Order | Fill | None:
    """Dispatch one broker event to the function that applies it."""
    if isinstance(event, FillReport):
        return apply_fill(event)
    if isinstance(event, OrderUpdate):
        return apply_order_update(event, known)
    if isinstance(event, CommissionUpdate):
        return apply_commission(event)
    if isinstance(event, ConnectionEvent):
        record_event(
            "broker.connected" if event.connected else "broker.disconnected",
            event.message,
            severity=Severity.INFO if event.connected else Severity.WARNING,
            code=event.code,
        )
    return None


class EventApplier:
    """Applies one poll's broker events in order and collects the orders they touched
    (for :func:`execution.exits.after_events`).

    Brokers repeat themselves: most status reports say what the database already has (an
    acknowledged order "submitted", a filled one "filled" after its fill). The orders the
    reports are about are read once for the whole poll, and kept current with what each
    applied event returns, so those repeats cost nothing."""

    def __init__(self, events: list[BrokerEvent]):
        self.events = events
        reported = {e.client_order_id for e in events if isinstance(e, OrderUpdate)}
        self.known: dict[str, tuple[str, str]] = {}
        if reported:
            rows = Order.objects.filter(client_order_id__in=reported).values_list(
                "client_order_id", "status", "broker_order_id"
            )
            self.known = {cid: (status, broker_id) for cid, status, broker_id in rows}
        self.touched: list[Order] = []

    def apply(self, event: BrokerEvent) -> Order | Fill | None:
        try:
            result = apply_event(event, self.known)
        except Exception:
            # what it changed before failing is unknown here: read the order again next time
            self.known.pop(getattr(event, "client_order_id", None), None)
            raise
        order = result.order if isinstance(result, Fill) else result
        if isinstance(order, Order):
            self.known[order.client_order_id] = (order.status, order.broker_order_id)
            self.touched.append(order)
        return result
