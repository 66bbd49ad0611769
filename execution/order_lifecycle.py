"""An order's life on our side: intent -> Order row (pending_submit, committed) -> broker.

Everything that changes an order goes through here, :mod:`execution.broker_reports` (what
the broker says back) and :mod:`execution.exits` (protective orders, closing a trade),
and every status change through :mod:`execution.state`. The engine process is the only
caller that holds a broker; pages and the API go through :mod:`execution.engine_commands`.

Rules that make a crash harmless (see docs/execution.md):

- the Order row is committed in ``pending_submit`` *before* the broker is called, with a
  ``client_order_id`` derived from what caused it (strategy, symbol, signal bar), so the
  same signal processed again after a restart finds its order instead of making another;
- a submit whose outcome is lost goes to ``unknown`` and only :func:`resolve_unknown`
  (a targeted ``find_order``) or reconciliation moves it on;
- a fill is a row unique on the broker's execution id:
  :func:`execution.broker_reports.apply_fill` of the same report twice is a no-op, so
  replaying executions after a restart is always safe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from execution.brokers.base import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    OrderRequest,
    SubmitAck,
    SubmitOutcomeUnknown,
)
from execution.models import Order, OrderPurpose, OrderStatus, OrderType, TimeInForce, Trade
from execution.signals import order_created
from execution.state import transition
from marketdata.models import Stock
from strategies.events import journal_batch, record_event
from strategies.models import Severity, Strategy, TradeSignal

PRICE_STEP = Decimal("0.000001")
S = OrderStatus


@dataclass
class OrderIntent:
    """What the pipeline wants to send, before it becomes an Order row."""

    stock: Stock
    side: str
    quantity: Decimal
    purpose: str = OrderPurpose.ENTRY
    strategy: Strategy | None = None
    signal: TradeSignal | None = None
    trade: Trade | None = None
    parent: Order | None = None
    order_type: str = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = TimeInForce.DAY
    client_order_id: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def make_client_order_id(kind: str, *parts: Any) -> str:
    """A readable, deterministic id (<= 64 chars): the same cause gives the same id, so the
    unique constraint stops a second order for it (e.g. a bar replayed after a crash)."""
    text = "-".join(str(p) for p in parts)
    cid = f"{kind}-{text}"
    if len(cid) > 64:
        cid = f"{kind}-{hashlib.sha1(text.encode()).hexdigest()[:24]}"
    return cid


def bar_key(ts: datetime) -> str:
    return ts.astimezone(timezone.UTC).strftime("%Y%m%d%H%M")


def to_price(value: Any) -> Decimal | None:
    """A price as stored on an order (a float rounded to six places)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(round(float(value), 6))).quantize(PRICE_STEP)


def _order_row(intent: OrderIntent, broker_name: str) -> Order:
    cid = intent.client_order_id or make_client_order_id(
        "O", intent.strategy.pk if intent.strategy else "x", intent.stock.symbol, timezone.now().timestamp()
    )
    return Order(
        client_order_id=cid,
        broker=broker_name,
        strategy=intent.strategy,
        stock=intent.stock,
        signal=intent.signal,
        trade=intent.trade,
        parent=intent.parent,
        purpose=intent.purpose,
        side=intent.side,
        order_type=intent.order_type,
        time_in_force=intent.time_in_force,
        quantity=intent.quantity,
        limit_price=to_price(intent.limit_price),
        stop_price=to_price(intent.stop_price),
        status=S.PENDING_SUBMIT,
        context=intent.context,
    )


def _announce_created(order: Order) -> None:
    record_event(
        "order.created",
        f"{order.side} {order.quantity.normalize():f} {order.stock.symbol} {order.order_type} "
        f"({order.purpose}) {order.client_order_id}",
        strategy=order.strategy,
        order_id=order.pk,
        client_order_id=order.client_order_id,
    )
    order_created.send(sender=Order, order=order)


def _known_order(cid: str) -> Order | None:
    return Order.objects.select_related("stock", "strategy").filter(client_order_id=cid).first()


def create_order(intent: OrderIntent, broker_name: str = "paper") -> tuple[Order, bool]:
    """The Order row in ``pending_submit``, committed; (existing row, False) if the
    client order id is already known (the unique constraint says so: no read first)."""
    order = _order_row(intent, broker_name)
    try:
        with transaction.atomic():
            order.save(force_insert=True)
            _announce_created(order)
    except IntegrityError:
        existing = _known_order(order.client_order_id)
        if existing is None:
            raise
        return existing, False
    return order, True


def create_orders(intents: list[OrderIntent], broker_name: str = "paper") -> list[Order]:
    """Several new orders at once (a protective pair): one read for the client order ids
    already known, one insert for the others. Call it inside a transaction: a row created
    by someone else in between raises IntegrityError for the whole of it."""
    rows = [_order_row(intent, broker_name) for intent in intents]
    known = {
        o.client_order_id: o
        for o in Order.objects.select_related("stock", "strategy").filter(
            client_order_id__in=[r.client_order_id for r in rows]
        )
    }
    new = [r for r in rows if r.client_order_id not in known]
    with transaction.atomic(savepoint=False):
        Order.objects.bulk_create(new)
        for order in new:
            _announce_created(order)
    return [known.get(r.client_order_id, r) for r in rows]


def order_request(order: Order) -> OrderRequest:
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.stock.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        exchange=order.stock.exchange,
        currency=order.stock.currency,
    )


def locked_order(order: Order) -> Order:
    """``order`` read again, locked for update (inside a transaction), with its stock and strategy."""
    return Order.objects.select_for_update(of=("self",)).select_related("stock", "strategy").get(pk=order.pk)


ACK_FIELDS = ["broker_order_id", "broker_session_order_id", "status", "submitted_at", "updated_at"]


def _acknowledge(locked: Order, ack: SubmitAck, at: datetime | None) -> None:
    """The broker's ids and the step to ``submitted`` on a locked order, not saved."""
    locked.broker_order_id = ack.broker_order_id or locked.broker_order_id
    locked.broker_session_order_id = ack.session_order_id
    if locked.status in (S.PENDING_SUBMIT, S.UNKNOWN):
        transition(locked, S.SUBMITTED, at=at, save=False)  # journaled by the state machine


def _record_ack(order: Order, ack: SubmitAck, at: datetime | None) -> Order:
    with transaction.atomic():
        locked = locked_order(order)
        _acknowledge(locked, ack, at)
        locked.save(update_fields=ACK_FIELDS)  # one write: the ids and the status step
    return locked


def _record_acks(orders: list[Order], acks: dict[str, SubmitAck], at: datetime | None) -> list[Order]:
    """The acknowledgements of a group: one locked read and one update for all of it, and
    one journal insert."""
    with transaction.atomic(), journal_batch():
        locked = {
            o.pk: o
            for o in Order.objects.select_for_update(of=("self",))
            .select_related("stock", "strategy")
            .filter(pk__in=[o.pk for o in orders])
        }
        now = timezone.now()
        acked = []
        for order in orders:
            row = locked[order.pk]
            if order.client_order_id in acks:
                _acknowledge(row, acks[order.client_order_id], at)
                row.updated_at = now  # bulk_update does not touch auto_now fields
                acked.append(row)
        Order.objects.bulk_update(acked, ACK_FIELDS)
    return [locked[o.pk] for o in orders]


def _submit_failed(order: Order, exc: Exception, at: datetime | None) -> Order:
    if isinstance(exc, BrokerUnavailable):
        # Certainly not sent: the order stays pending_submit and is sent after reconnecting.
        record_event(
            "order.submit_deferred",
            f"{order.client_order_id} not sent, broker unavailable: {exc}",
            strategy=order.strategy,
            severity=Severity.WARNING,
            order_id=order.pk,
        )
        return order
    with transaction.atomic():
        locked = locked_order(order)
        if isinstance(exc, SubmitOutcomeUnknown):
            transition(locked, S.UNKNOWN, reason=str(exc), at=at)
        else:
            code = getattr(exc, "code", None)
            reason = f"{exc} (code {code})" if code is not None else str(exc)
            transition(locked, S.REJECTED, reason=reason, at=at)
    return locked


def submit_order(order: Order, broker: Broker, at: datetime | None = None) -> Order:
    """Send a ``pending_submit`` order and record the outcome (see the module rules)."""
    if order.status != S.PENDING_SUBMIT:
        return order
    try:
        ack = broker.submit(order_request(order))
    except (BrokerError, BrokerUnavailable) as exc:
        return _submit_failed(order, exc, at)
    return _record_ack(order, ack, at)


def submit_oco(orders: list[Order], broker: Broker, at: datetime | None = None) -> list[Order]:
    """Send protective orders that cancel each other (stop-loss and take-profit)."""
    orders = [o for o in orders if o.status == S.PENDING_SUBMIT]
    if not orders:
        return []
    try:
        acks = broker.submit_oco([order_request(o) for o in orders])
    except (BrokerError, BrokerUnavailable) as exc:
        return [_submit_failed(o, exc, at) for o in orders]
    return _record_acks(orders, {a.client_order_id: a for a in acks}, at)


def cancel_order(order: Order, broker: Broker, reason: str = "") -> bool:
    """Ask the broker to cancel; the ``cancelled`` status comes back as an event.

    An order never sent (``pending_submit``) is cancelled here and now."""
    order.refresh_from_db()
    if not order.is_open:
        return False
    if order.status == S.PENDING_SUBMIT:
        with transaction.atomic():
            locked = locked_order(order)
            if locked.status == S.PENDING_SUBMIT:
                transition(locked, S.CANCELLED, reason=reason or "cancelled before it was sent")
        return True
    try:
        broker.cancel(order.client_order_id)
    except BrokerError as exc:
        record_event(
            "order.cancel_failed",
            f"cancel of {order.client_order_id} failed: {exc}",
            strategy=order.strategy,
            severity=Severity.WARNING,
            order_id=order.pk,
        )
        return False
    record_event(
        "order.cancel_requested",
        f"cancel of {order.client_order_id} requested" + (f": {reason}" if reason else ""),
        strategy=order.strategy,
        order_id=order.pk,
    )
    return True


def resolve_unknown(order: Order, broker: Broker) -> Order:
    """Ask the broker about an ``unknown`` order and adopt its answer. An order the broker
    does not have never reached it: cancelled."""
    found = broker.find_order(order.client_order_id)
    with transaction.atomic():
        locked = locked_order(order)
        if locked.status != S.UNKNOWN:
            return locked
        if found is None:
            transition(locked, S.CANCELLED, reason="the broker never received it")
            return locked
        locked.broker_order_id = found.broker_order_id or locked.broker_order_id
        locked.broker_session_order_id = found.session_order_id or locked.broker_session_order_id
        locked.save(update_fields=["broker_order_id", "broker_session_order_id", "updated_at"])
        status = found.status if found.status != S.PENDING_SUBMIT else S.SUBMITTED
        if status in (S.PARTIALLY_FILLED, S.FILLED) and not locked.fills.exists():
            # The executions come through apply_fill (reconciliation fetches them); until
            # then the order is at the broker: submitted.
            status = S.SUBMITTED
        transition(locked, status, reason="resolved by a broker query")
    return locked
