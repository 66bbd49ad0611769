"""Trade bookkeeping: entry fills open a Trade, exit fills close it with its P&L.

Called by :func:`execution.broker_reports.apply_fill` inside its transaction, once per new
fill row, so each fill changes a trade exactly once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from execution.models import (
    ExitReason,
    Fill,
    Order,
    OrderPurpose,
    OrderSide,
    Trade,
    TradeDirection,
    TradeStatus,
)
from execution.signals import trade_closed, trade_opened, trade_updated
from strategies.events import record_event
from strategies.models import Severity

ZERO = Decimal("0")
EXIT_PURPOSES = (OrderPurpose.EXIT, OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT)
PURPOSE_EXIT_REASON = {
    OrderPurpose.STOP_LOSS: ExitReason.STOP_LOSS,
    OrderPurpose.TAKE_PROFIT: ExitReason.TAKE_PROFIT,
    OrderPurpose.EXIT: ExitReason.SIGNAL,
}
PNL_STEP = Decimal("0.000001")


def _vwap(fills) -> tuple[Decimal, Decimal]:
    quantity = sum((f.quantity for f in fills), ZERO)
    if quantity == 0:
        return ZERO, ZERO
    return quantity, sum((f.quantity * f.price for f in fills), ZERO) / quantity


def sign(trade: Trade) -> int:
    return 1 if trade.direction == TradeDirection.LONG else -1


def exited_quantity(trade: Trade) -> Decimal:
    return (
        Fill.objects.filter(order__trade=trade, order__purpose__in=EXIT_PURPOSES).aggregate(
            q=Sum("quantity")
        )["q"]
        or ZERO
    )


def on_fill(order: Order, fill: Fill) -> Trade | None:
    """Open, grow, reduce or close the order's trade with this new fill. An entry's first
    fill sets ``order.trade``; the caller saves the order (one write per fill)."""
    if order.purpose == OrderPurpose.ENTRY:
        return _entry_fill(order, fill)
    return _exit_fill(order, fill)


def _entry_fill(order: Order, fill: Fill) -> Trade:
    trade = order.trade
    if trade is None:
        context = dict(order.context.get("market_context") or {})
        trade = Trade.objects.create(
            strategy=order.strategy,
            stock=order.stock,
            signal=order.signal,
            direction=TradeDirection.LONG if order.side == OrderSide.BUY else TradeDirection.SHORT,
            entry_time=fill.timestamp,
            entry_price=fill.price,
            quantity=fill.quantity,
            fees=fill.commission,
            mae=ZERO,
            mfe=ZERO,
            market_context=context,
        )
        order.trade = trade
        record_event(
            "trade.opened",
            f"{trade.direction} {trade.quantity.normalize():f} {trade.stock.symbol} @ {trade.entry_price}",
            strategy=trade.strategy,
            trade_id=trade.pk,
            order_id=order.pk,
        )
        trade_opened.send(sender=Trade, trade=trade)
        return trade
    # A further (partial) fill of the same entry: average the entry price.
    entry_fills = list(Fill.objects.filter(order__trade=trade, order__purpose=OrderPurpose.ENTRY))
    trade.quantity, trade.entry_price = _vwap(entry_fills)
    trade.entry_price = trade.entry_price.quantize(PNL_STEP)
    trade.fees += fill.commission
    trade.save(update_fields=["quantity", "entry_price", "fees", "updated_at"])
    trade_updated.send(sender=Trade, trade=trade)
    return trade


def _exit_fill(order: Order, fill: Fill) -> Trade | None:
    trade = order.trade
    if trade is None:
        record_event(
            "fill.orphan",
            f"exit fill {fill.execution_id} of {order.client_order_id} has no trade to close",
            strategy=order.strategy,
            severity=Severity.ERROR,
            order_id=order.pk,
        )
        return None
    trade.fees += fill.commission
    exit_fills = list(Fill.objects.filter(order__trade=trade, order__purpose__in=EXIT_PURPOSES))
    exited, exit_price = _vwap(exit_fills)
    if exited < trade.quantity or trade.status == TradeStatus.CLOSED:
        trade.save(update_fields=["fees", "updated_at"])
        trade_updated.send(sender=Trade, trade=trade)
        return trade
    reason = order.context.get("exit_reason") or PURPOSE_EXIT_REASON.get(order.purpose, ExitReason.SIGNAL)
    record_exit(trade, exit_price.quantize(PNL_STEP), fill.timestamp, reason)
    return trade


def compute_pnl(trade: Trade) -> None:
    """Realised P&L (net of every fee), its percentage of the entry value, and R."""
    gross = (trade.exit_price - trade.entry_price) * trade.quantity * sign(trade)
    trade.realized_pnl = (gross - trade.fees).quantize(PNL_STEP)
    cost = trade.entry_price * trade.quantity
    trade.realized_pnl_pct = (trade.realized_pnl / cost).quantize(PNL_STEP) if cost else None
    if trade.risk_amount:
        trade.r_multiple = (trade.realized_pnl / trade.risk_amount).quantize(Decimal("0.0001"))


def record_exit(trade: Trade, exit_price: Decimal, at: datetime, reason: str) -> None:
    trade.exit_price = exit_price
    trade.exit_time = at
    trade.exit_reason = reason
    trade.status = TradeStatus.CLOSED
    compute_pnl(trade)
    trade.save()
    holding = trade.exit_time - trade.entry_time
    record_event(
        "trade.closed",
        f"{trade.direction} {trade.quantity.normalize():f} {trade.stock.symbol} closed ({reason}) "
        f"@ {trade.exit_price}: P&L {trade.realized_pnl:.2f}",
        strategy=trade.strategy,
        trade_id=trade.pk,
        exit_reason=reason,
        realized_pnl=str(trade.realized_pnl),
        holding_seconds=int(holding.total_seconds()),
    )
    trade_closed.send(sender=Trade, trade=trade)


def refresh_fees(trade: Trade) -> None:
    """Fees again from the fills (a commission report arrived late), and P&L if closed."""
    trade.fees = Fill.objects.filter(order__trade=trade).aggregate(f=Sum("commission"))["f"] or ZERO
    if trade.status == TradeStatus.CLOSED:
        compute_pnl(trade)
    trade.save()
    trade_updated.send(sender=Trade, trade=trade)


def update_excursions(trade: Trade, high: Decimal, low: Decimal) -> bool:
    """Widen MAE/MFE (price distances from the entry) with one bar; True if changed."""
    if trade.direction == TradeDirection.LONG:
        adverse, favourable = trade.entry_price - low, high - trade.entry_price
    else:
        adverse, favourable = high - trade.entry_price, trade.entry_price - low
    mae = max(trade.mae or ZERO, adverse, ZERO)
    mfe = max(trade.mfe or ZERO, favourable, ZERO)
    if mae != trade.mae or mfe != trade.mfe:
        trade.mae, trade.mfe = mae, mfe
        return True
    return False


def holding_time(trade: Trade):
    return (trade.exit_time - trade.entry_time) if trade.exit_time else None
