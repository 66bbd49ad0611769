"""The order pipeline: intent -> Order row (pending_submit, committed) -> broker -> events.

Everything that changes an order goes through here, and every status change through
:mod:`execution.state`. The engine process is the only caller that holds a broker; pages
and the API go through :mod:`execution.commands`.

Rules that make a crash harmless (see docs/execution.md):

- the Order row is committed in ``pending_submit`` *before* the broker is called, with a
  ``client_order_id`` derived from what caused it (strategy, symbol, signal bar), so the
  same signal processed again after a restart finds its order instead of making another;
- a submit whose outcome is lost goes to ``unknown`` and only :func:`resolve_unknown`
  (a targeted ``find_order``) or reconciliation moves it on;
- a fill is a row unique on the broker's execution id: :func:`apply_fill` of the same
  report twice is a no-op, so replaying executions after a restart is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists
from django.utils import timezone

from execution import trades as trade_book
from execution.brokers.base import (
    Broker,
    BrokerError,
    BrokerEvent,
    BrokerUnavailable,
    CommissionUpdate,
    ConnectionEvent,
    FillReport,
    OrderRequest,
    OrderUpdate,
    SubmitAck,
    SubmitOutcomeUnknown,
)
from execution.models import (
    OPEN_ORDER_STATUSES,
    ExitReason,
    Fill,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
    TradeDirection,
    TradeStatus,
)
from execution.protections import protections_after_exit
from execution.signals import fill_created, order_created
from execution.state import IllegalTransition, transition
from execution.stops import levels
from marketdata.models import Stock
from strategies.events import journal_batch, record_event
from strategies.models import Severity, Strategy, TradeSignal

logger = logging.getLogger(__name__)
ZERO = Decimal("0")
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


def _d(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(round(float(value), 6))).quantize(PRICE_STEP)


# --- creating and submitting ----------------------------------------------------------------


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
        limit_price=_d(intent.limit_price),
        stop_price=_d(intent.stop_price),
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


def _locked(order: Order) -> Order:
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
        locked = _locked(order)
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
        locked = _locked(order)
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
            locked = _locked(order)
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


# --- broker events into the state machine ---------------------------------------------------


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
    (for :func:`after_events`).

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


def resolve_unknown(order: Order, broker: Broker) -> Order:
    """Ask the broker about an ``unknown`` order and adopt its answer. An order the broker
    does not have never reached it: cancelled."""
    found = broker.find_order(order.client_order_id)
    with transaction.atomic():
        locked = _locked(order)
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


# --- after fills: protection and sibling cancels --------------------------------------------


def _levels(trade: Trade, strategy: Strategy, atr: float | None) -> tuple[float | None, float | None]:
    return levels(trade.direction, float(trade.entry_price), atr, strategy)


def protective_orders(trade: Trade, entry: Order) -> list[Order]:
    """Create (pending_submit) the stop-loss and take-profit of a newly filled entry, from the
    fill price and the signal bar's ATR, exactly as the backtester places them."""
    strategy = trade.strategy
    if strategy is None or (strategy.stop_loss_type == "none" and strategy.take_profit_type == "none"):
        return []
    stop, target = _levels(trade, strategy, entry.context.get("atr"))
    try:
        return _protective_pair(trade, entry, stop, target)
    except IntegrityError:
        # created by someone else in between (the transaction rolled back): take theirs
        trade.refresh_from_db()
        return _protective_pair(trade, entry, stop, target)


def _protective_pair(trade: Trade, entry: Order, stop: float | None, target: float | None) -> list[Order]:
    exit_side = OrderSide.SELL if trade.direction == TradeDirection.LONG else OrderSide.BUY
    # the levels and both orders in one transaction (one journal insert), committed
    # before submit_oco calls the broker
    with transaction.atomic(), journal_batch():
        fields_changed = []
        if stop is not None:
            trade.stop_loss = _d(stop)
            trade.risk_amount = (abs(trade.entry_price - trade.stop_loss) * trade.quantity).quantize(
                PRICE_STEP
            )
            fields_changed += ["stop_loss", "risk_amount"]
        if target is not None:
            trade.take_profit = _d(target)
            fields_changed.append("take_profit")
        if fields_changed:
            trade.save(update_fields=[*fields_changed, "updated_at"])
        remaining = trade.quantity - trade_book.exited_quantity(trade)
        if remaining <= 0:
            return []
        intents = [
            OrderIntent(
                stock=trade.stock,
                side=exit_side,
                quantity=remaining,
                purpose=purpose,
                strategy=trade.strategy,
                trade=trade,
                parent=entry,
                order_type=kind,
                stop_price=price if kind == OrderType.STOP else None,
                limit_price=price if kind == OrderType.LIMIT else None,
                time_in_force=TimeInForce.GTC,
                client_order_id=make_client_order_id(prefix, entry.client_order_id),
            )
            for purpose, kind, prefix, price in (
                (OrderPurpose.STOP_LOSS, OrderType.STOP, "SL", trade.stop_loss),
                (OrderPurpose.TAKE_PROFIT, OrderType.LIMIT, "TP", trade.take_profit),
            )
            if price is not None
        ]
        return create_orders(intents, broker_name=entry.broker)


def open_orders_of(trade: Trade, purposes=None) -> list[Order]:
    qs = Order.objects.filter(trade=trade, status__in=OPEN_ORDER_STATUSES).select_related("stock", "strategy")
    if purposes:
        qs = qs.filter(purpose__in=purposes)
    return list(qs)


def after_events(touched_orders: list[Order], broker: Broker, at: datetime | None = None) -> None:
    """What fills imply for other orders: protect a filled entry; cancel the orders left
    on a closed trade (the other side of an OCO pair, a pending exit).

    The touched orders, their trades, the open orders of the closed ones and the
    protection already placed are read once for the whole batch."""
    ids = list(dict.fromkeys(o.pk for o in touched_orders))
    if not ids:
        return
    orders = {
        o.pk: o
        for o in Order.objects.filter(pk__in=ids, trade__isnull=False).select_related(
            "trade", "trade__stock", "trade__strategy"
        )
    }
    closed = {o.trade_id for o in orders.values() if o.trade.status == TradeStatus.CLOSED}
    left_open: dict[int, list[Order]] = {}
    if closed:
        for other in Order.objects.filter(trade_id__in=closed, status__in=OPEN_ORDER_STATUSES).select_related(
            "stock", "strategy"
        ):
            left_open.setdefault(other.trade_id, []).append(other)
    done = (S.FILLED, S.CANCELLED)
    filled_entries = {
        o.trade_id
        for o in orders.values()
        if o.trade_id not in closed and o.purpose == OrderPurpose.ENTRY and o.status in done
    }
    protected = (
        set(
            Order.objects.filter(
                trade_id__in=filled_entries, purpose__in=(OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT)
            ).values_list("trade_id", flat=True)
        )
        if filled_entries
        else set()
    )
    for pk in ids:
        order = orders.get(pk)
        if order is None:
            continue
        trade = order.trade
        if trade.pk in closed:
            for other in left_open.pop(trade.pk, []):
                cancel_order(other, broker, reason=f"trade {trade.pk} is closed")
            if order.purpose != OrderPurpose.ENTRY and order.status == S.FILLED:
                protections_after_exit(trade)
            continue
        if order.purpose == OrderPurpose.ENTRY and order.status in done and trade.pk not in protected:
            protected.add(trade.pk)
            submit_oco(protective_orders(trade, order), broker, at=at)


def close_trade_order(
    trade: Trade, broker: Broker, reason: str, *, at: datetime | None = None, key: str = ""
) -> Order | None:
    """Close an open trade at market: cancel its working orders, send the exit."""
    trade.refresh_from_db()
    if trade.status != TradeStatus.OPEN:
        return None
    for other in open_orders_of(trade):
        if other.purpose != OrderPurpose.EXIT:
            cancel_order(other, broker, reason=f"closing trade {trade.pk} ({reason})")
    if open_orders_of(trade, purposes=[OrderPurpose.EXIT]):
        return None  # an exit is already on its way
    remaining = trade.quantity - trade_book.exited_quantity(trade)
    if remaining <= 0:
        return None
    side = OrderSide.SELL if trade.direction == TradeDirection.LONG else OrderSide.BUY
    order, created = create_order(
        OrderIntent(
            stock=trade.stock,
            side=side,
            quantity=remaining,
            purpose=OrderPurpose.EXIT,
            strategy=trade.strategy,
            trade=trade,
            client_order_id=make_client_order_id("X", trade.pk, key or reason),
            context={"exit_reason": reason},
        ),
        broker_name=broker.name,
    )
    if created:
        order = submit_order(order, broker, at=at)
    return order


EXIT_REASONS = {r.value for r in ExitReason}
