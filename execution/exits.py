"""Orders that take a trade out: the protective stop-loss and take-profit placed when an
entry fills, the cancels a closed trade leaves to do, and closing a trade at market.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from execution import trades as trade_book
from execution.brokers.base import Broker
from execution.models import (
    OPEN_ORDER_STATUSES,
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
from execution.order_lifecycle import (
    PRICE_STEP,
    OrderIntent,
    cancel_order,
    create_order,
    create_orders,
    make_client_order_id,
    submit_oco,
    submit_order,
    to_price,
)
from execution.protections import protections_after_exit
from execution.stops import levels
from strategies.events import journal_batch
from strategies.models import Strategy

S = OrderStatus


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
            trade.stop_loss = to_price(stop)
            trade.risk_amount = (abs(trade.entry_price - trade.stop_loss) * trade.quantity).quantize(
                PRICE_STEP
            )
            fields_changed += ["stop_loss", "risk_amount"]
        if target is not None:
            trade.take_profit = to_price(target)
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


def send_exit_order(
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
