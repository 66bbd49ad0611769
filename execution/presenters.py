"""What pages receive about orders, fills and trades: plain dicts of JSON-ready values.

``trading`` builds them when execution's signals (``execution.signals``) arrive, at the
moment the change is made, from the objects the signal carries (and their stock).
"""

from __future__ import annotations

from execution.models import Fill, Order, Trade


def order_payload(order: Order) -> dict:
    """What pages receive about an order on the ``orders`` group."""
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "broker_order_id": order.broker_order_id,
        "strategy_id": order.strategy_id,
        "symbol": order.stock.symbol,
        "purpose": order.purpose,
        "side": order.side,
        "order_type": order.order_type,
        "quantity": str(order.quantity),
        "limit_price": None if order.limit_price is None else str(order.limit_price),
        "stop_price": None if order.stop_price is None else str(order.stop_price),
        "status": order.status,
        "filled_quantity": str(order.filled_quantity),
        "avg_fill_price": None if order.avg_fill_price is None else str(order.avg_fill_price),
        "reject_reason": order.reject_reason,
    }


def trade_payload(trade: Trade) -> dict:
    """What pages receive about a trade on the ``trades`` group."""

    def s(value):
        return None if value is None else str(value)

    return {
        "id": trade.pk,
        "strategy_id": trade.strategy_id,
        "symbol": trade.stock.symbol,
        "direction": trade.direction,
        "status": trade.status,
        "quantity": s(trade.quantity),
        "entry_time": trade.entry_time.isoformat(),
        "entry_price": s(trade.entry_price),
        "exit_time": trade.exit_time.isoformat() if trade.exit_time else None,
        "exit_price": s(trade.exit_price),
        "exit_reason": trade.exit_reason,
        "stop_loss": s(trade.stop_loss),
        "take_profit": s(trade.take_profit),
        "realized_pnl": s(trade.realized_pnl),
        "fees": s(trade.fees),
        "r_multiple": s(trade.r_multiple),
    }


def fill_payload(order: Order, fill: Fill) -> dict:
    """What pages receive about a new fill on the ``orders`` group."""
    return {
        "order_id": order.pk,
        "client_order_id": order.client_order_id,
        "execution_id": fill.execution_id,
        "symbol": order.stock.symbol,
        "side": order.side,
        "quantity": str(fill.quantity),
        "price": str(fill.price),
        "commission": str(fill.commission),
        "timestamp": fill.timestamp.isoformat(),
    }
