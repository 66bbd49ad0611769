"""Reconciliation with the broker by ``client_order_id``: run at start-up (trading stays
blocked until it has passed) and after every reconnect.

1. Missed executions are applied (``apply_fill`` is idempotent: a fill counts once).
2. Every order the database has open is matched with the broker's view:
   - ``pending_submit`` the broker *has*: adopted (broker ids stored, status taken over);
   - ``pending_submit`` the broker does *not* have (the process died between writing
     the row and the call): **exits and protective orders are sent** (they only reduce
     risk); **an entry is sent only while it is fresh**, i.e. its signal bar is at or
     after the last bar the engine had finished (``fresh_after``), so it still fills on
     the bar it was meant for; an older entry is cancelled as stale, never sent late;
   - ``unknown``: resolved by a targeted ``find_order`` (absent: cancelled);
   - ``submitted``/``partially_filled`` no longer open at the broker: its final status.
3. Positions at the broker are compared with the open trades; a difference is journaled
   as an error event for a person to look at (nothing is guessed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils.dateparse import parse_datetime

from execution import broker_reports, exits, order_lifecycle
from execution.brokers.base import Broker, OrderUpdate
from execution.models import OPEN_ORDER_STATUSES, Fill, Order, OrderPurpose, OrderStatus, Trade, TradeStatus
from execution.state import transition
from execution.trades import exited_quantity
from strategies.events import record_event
from strategies.models import Severity

ZERO = Decimal("0")


@dataclass
class ReconcileReport:
    fills_applied: int = 0
    adopted: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.fills_applied} missed fills applied, {len(self.adopted)} adopted, {len(self.sent)} sent, "
            f"{len(self.cancelled)} cancelled, {len(self.resolved)} resolved, "
            f"{len(self.mismatches)} position differences"
        )


def _is_fresh(order: Order, fresh_after: datetime | None) -> bool:
    if order.purpose != OrderPurpose.ENTRY:
        return True
    if fresh_after is None:
        return True
    bar = order.context.get("bar_time")
    if not bar:
        return False
    return parse_datetime(bar) >= fresh_after


def broker_net_positions(broker: Broker) -> dict[str, Decimal]:
    return {p.symbol: p.quantity for p in broker.positions() if p.quantity}


def database_net_positions() -> dict[str, Decimal]:
    net: dict[str, Decimal] = {}
    for trade in Trade.objects.filter(status=TradeStatus.OPEN).select_related("stock"):
        quantity = trade.quantity - exited_quantity(trade)
        signed = quantity if trade.direction == "long" else -quantity
        net[trade.stock.symbol] = net.get(trade.stock.symbol, ZERO) + signed
    return {k: v for k, v in net.items() if v}


def reconcile(
    broker: Broker, fresh_after: datetime | None = None, at: datetime | None = None
) -> ReconcileReport:
    """Bring the database in line with the broker (see the module docstring)."""
    report = ReconcileReport()
    touched: list[Order] = []

    # 1. executions since the newest fill we know (fills arrive in time order).
    since = Fill.objects.aggregate(t=Max("timestamp"))["t"]
    for execution in broker.executions(since=since):
        fill = broker_reports.apply_fill(execution)
        if fill is not None:
            report.fills_applied += 1
            touched.append(fill.order)

    # 2. open orders, matched by client order id.
    at_broker = {o.client_order_id: o for o in broker.open_orders()}
    for order in (
        Order.objects.filter(status__in=OPEN_ORDER_STATUSES)
        .select_related("stock", "strategy")
        .order_by("id")
    ):
        cid = order.client_order_id
        found = at_broker.get(cid) or broker.find_order(cid)
        if order.status == OrderStatus.PENDING_SUBMIT:
            if found is not None:
                with transaction.atomic():
                    locked = (
                        Order.objects.select_for_update(of=("self",))
                        .select_related("stock", "strategy")
                        .get(pk=order.pk)
                    )
                    locked.broker_order_id = found.broker_order_id
                    locked.broker_session_order_id = found.session_order_id
                    locked.save(update_fields=["broker_order_id", "broker_session_order_id", "updated_at"])
                    if locked.status == OrderStatus.PENDING_SUBMIT:
                        transition(locked, OrderStatus.SUBMITTED, reason="adopted by reconciliation", at=at)
                broker_reports.apply_order_update(_as_update(found, at))
                report.adopted.append(cid)
            elif _is_fresh(order, fresh_after):
                order_lifecycle.submit_order(order, broker, at=at)
                report.sent.append(cid)
            else:
                order_lifecycle.cancel_order(order, broker, reason="stale: never sent and its bar has passed")
                report.cancelled.append(cid)
            touched.append(order)
            continue
        if order.status == OrderStatus.UNKNOWN:
            order_lifecycle.resolve_unknown(order, broker)
            report.resolved.append(cid)
            touched.append(order)
            continue
        if found is None:
            record_event(
                "reconcile.order_missing",
                f"{cid} is {order.status} here but the broker does not know it",
                strategy=order.strategy,
                severity=Severity.ERROR,
                order_id=order.pk,
            )
            continue
        if found.status != order.status:
            broker_reports.apply_order_update(_as_update(found, at))
            report.resolved.append(cid)
            touched.append(order)
    exits.after_events(touched, broker, at=at)

    # 3. positions.
    theirs, ours = broker_net_positions(broker), database_net_positions()
    for symbol in sorted(set(theirs) | set(ours)):
        if theirs.get(symbol, ZERO) != ours.get(symbol, ZERO):
            broker_qty = theirs.get(symbol, ZERO).normalize()
            trades_qty = ours.get(symbol, ZERO).normalize()
            text = f"{symbol}: broker holds {broker_qty:f}, open trades hold {trades_qty:f}"
            report.mismatches.append(text)
            record_event("reconcile.position_mismatch", text, severity=Severity.ERROR, symbol=symbol)
    record_event(
        "reconcile.done",
        f"reconciliation with {broker.name}: {report.summary()}",
        severity=Severity.WARNING if report.mismatches else Severity.INFO,
    )
    return report


def _as_update(found, at: datetime | None) -> OrderUpdate:
    from django.utils import timezone

    return OrderUpdate(
        client_order_id=found.client_order_id,
        broker_order_id=found.broker_order_id,
        status=found.status,
        filled_quantity=found.filled_quantity,
        avg_fill_price=found.avg_fill_price,
        timestamp=at or timezone.now(),
        message="reported by the broker at reconciliation",
    )
