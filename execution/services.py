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
from django.db.models import Sum
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
from execution.state import IllegalTransition, order_payload, transition
from marketdata.models import Stock
from strategies.events import journal_batch, record_event
from strategies.models import Severity, Strategy, TradeSignal
from trading.broadcast import publish

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


def create_order(intent: OrderIntent, broker_name: str = "paper") -> tuple[Order, bool]:
    """The Order row in ``pending_submit``, committed; (existing row, False) if the
    client order id is already known."""
    cid = intent.client_order_id or make_client_order_id(
        "O", intent.strategy.pk if intent.strategy else "x", intent.stock.symbol, timezone.now().timestamp()
    )
    existing = Order.objects.select_related("stock", "strategy").filter(client_order_id=cid).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            order = Order.objects.create(
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
            record_event(
                "order.created",
                f"{order.side} {order.quantity.normalize():f} {order.stock.symbol} {order.order_type} "
                f"({order.purpose}) {order.client_order_id}",
                strategy=order.strategy,
                order_id=order.pk,
                client_order_id=cid,
            )
            publish("orders", "order.created", order_payload(order))
    except IntegrityError:  # created by someone else in between
        return Order.objects.select_related("stock", "strategy").get(client_order_id=cid), False
    return order, True


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


def _record_ack(order: Order, ack: SubmitAck, at: datetime | None) -> Order:
    with transaction.atomic():
        locked = _locked(order)
        locked.broker_order_id = ack.broker_order_id or locked.broker_order_id
        locked.broker_session_order_id = ack.session_order_id
        fields = ["broker_order_id", "broker_session_order_id", "updated_at"]
        if locked.status in (S.PENDING_SUBMIT, S.UNKNOWN):
            # one write: the ids and the status step (journaled by the state machine)
            transition(locked, S.SUBMITTED, at=at, save=False)
            fields += ["status", "submitted_at"]
        locked.save(update_fields=fields)
    return locked


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
    by_id = {a.client_order_id: a for a in acks}
    # the acknowledgements of the group in one transaction (and one journal insert)
    with transaction.atomic(), journal_batch():
        return [
            _record_ack(o, by_id[o.client_order_id], at) if o.client_order_id in by_id else o for o in orders
        ]


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


def apply_order_update(update: OrderUpdate) -> Order | None:
    """A broker status report, through the state machine. Stale reports (``submitted``
    after fills) are ignored; illegal ones are journaled and change nothing."""
    # Brokers repeat themselves (an acknowledged order reported "submitted", a filled one
    # "filled" after its fill): settle those with one read, without a lock.
    current = (
        Order.objects.filter(client_order_id=update.client_order_id)
        .values_list("status", "broker_order_id")
        .first()
    )
    known = current is not None and (current[1] or not update.broker_order_id)
    if known and _is_stale(current[0], update.status):
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


def _refresh_fill_totals(order: Order) -> None:
    totals = order.fills.aggregate(q=Sum("quantity"), c=Sum("commission"))
    quantity = totals["q"] or ZERO
    value = sum((f.quantity * f.price for f in order.fills.all()), ZERO)
    order.filled_quantity = min(quantity, order.quantity)
    order.avg_fill_price = (value / quantity).quantize(PRICE_STEP) if quantity else None
    order.commission = totals["c"] or ZERO
    order.save(update_fields=["filled_quantity", "avg_fill_price", "commission", "updated_at"])


def apply_fill(report: FillReport) -> Fill | None:
    """Record one execution, exactly once; moves the order and its trade on.

    Returns the new Fill, or None when it was already applied or its order is unknown."""
    if Fill.objects.filter(execution_id=report.execution_id).exists():
        return None
    try:
        # the fill's journal rows (order step, fill, trade) in one insert, in its transaction
        with transaction.atomic(), journal_batch():
            order = (
                Order.objects.select_for_update(of=("self",))
                .select_related("stock", "strategy", "trade")
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
            fill = Fill.objects.create(
                order=order,
                execution_id=report.execution_id,
                timestamp=report.timestamp,
                quantity=report.quantity,
                price=report.price,
                commission=report.commission or ZERO,
            )
            _refresh_fill_totals(order)
            complete = order.filled_quantity >= order.quantity
            # An illegal step is journaled; the money moved all the same, so the fill counts.
            with contextlib.suppress(IllegalTransition):
                transition(order, S.FILLED if complete else S.PARTIALLY_FILLED, at=report.timestamp)
            record_event(
                "fill.applied",
                f"{report.side} {report.quantity.normalize():f} {order.stock.symbol} @ {report.price} "
                f"({order.client_order_id}, execution {report.execution_id})",
                strategy=order.strategy,
                order_id=order.pk,
                execution_id=report.execution_id,
            )
            publish(
                "orders",
                "fill.created",
                {
                    "order_id": order.pk,
                    "client_order_id": order.client_order_id,
                    "execution_id": fill.execution_id,
                    "symbol": order.stock.symbol,
                    "side": order.side,
                    "quantity": str(fill.quantity),
                    "price": str(fill.price),
                    "commission": str(fill.commission),
                    "timestamp": fill.timestamp.isoformat(),
                },
            )
            trade_book.on_fill(order, fill)
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


def apply_event(event: BrokerEvent) -> Order | Fill | None:
    """Dispatch one broker event to the function that applies it."""
    if isinstance(event, FillReport):
        return apply_fill(event)
    if isinstance(event, OrderUpdate):
        return apply_order_update(event)
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
    from strategies.backtest.stops import levels

    return levels(trade.direction, float(trade.entry_price), atr, strategy)


def protective_orders(trade: Trade, entry: Order) -> list[Order]:
    """Create (pending_submit) the stop-loss and take-profit of a newly filled entry, from the
    fill price and the signal bar's ATR, exactly as the backtester places them."""
    strategy = trade.strategy
    if strategy is None or (strategy.stop_loss_type == "none" and strategy.take_profit_type == "none"):
        return []
    atr = entry.context.get("atr")
    stop, target = _levels(trade, strategy, atr)
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
        orders = []
        for purpose, kind, price in (
            (OrderPurpose.STOP_LOSS, OrderType.STOP, trade.stop_loss),
            (OrderPurpose.TAKE_PROFIT, OrderType.LIMIT, trade.take_profit),
        ):
            if price is None or remaining <= 0:
                continue
            order, _ = create_order(
                OrderIntent(
                    stock=trade.stock,
                    side=exit_side,
                    quantity=remaining,
                    purpose=purpose,
                    strategy=strategy,
                    trade=trade,
                    parent=entry,
                    order_type=kind,
                    stop_price=price if kind == OrderType.STOP else None,
                    limit_price=price if kind == OrderType.LIMIT else None,
                    time_in_force=TimeInForce.GTC,
                    client_order_id=make_client_order_id(
                        "SL" if kind == OrderType.STOP else "TP", entry.client_order_id
                    ),
                ),
                broker_name=entry.broker,
            )
            orders.append(order)
        return orders


def open_orders_of(trade: Trade, purposes=None) -> list[Order]:
    qs = Order.objects.filter(trade=trade, status__in=OPEN_ORDER_STATUSES).select_related("stock", "strategy")
    if purposes:
        qs = qs.filter(purpose__in=purposes)
    return list(qs)


def after_events(touched_orders: list[Order], broker: Broker, at: datetime | None = None) -> None:
    """What fills imply for other orders: protect a filled entry; cancel the orders left
    on a closed trade (the other side of an OCO pair, a pending exit)."""
    seen: set[int] = set()
    for order in touched_orders:
        if order.pk in seen:
            continue
        seen.add(order.pk)
        order.refresh_from_db()
        if order.trade_id is None:
            continue
        trade = Trade.objects.select_related("stock", "strategy").get(pk=order.trade_id)
        if trade.status == TradeStatus.CLOSED:
            for other in open_orders_of(trade):
                cancel_order(other, broker, reason=f"trade {trade.pk} is closed")
            if order.purpose != OrderPurpose.ENTRY and order.status == S.FILLED:
                from execution.risk import protections_after_exit

                protections_after_exit(trade)
            continue
        if order.purpose == OrderPurpose.ENTRY and order.status in (S.FILLED, S.CANCELLED):
            if Order.objects.filter(
                trade=trade, purpose__in=(OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT)
            ).exists():
                continue
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
