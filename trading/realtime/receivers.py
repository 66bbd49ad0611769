"""The lower apps' signals, broadcast to the pages after commit (connected in
``TradingConfig.ready()`` by :func:`connect`).

Each receiver builds its payload when the signal is sent, as the change is made, and
hands it to :func:`~trading.realtime.broadcast.publish`, which defers the send until the
transaction commits; so groups, message kinds, payloads and their order are those of
the calls that make the changes. Receivers are plain functions: no query, no lookup.
"""

from __future__ import annotations

from typing import Any

from execution import signals as execution_signals
from execution.backtest import signals as backtest_signals
from execution.presenters import fill_payload, order_payload, trade_payload
from strategies import signals as strategies_signals
from strategies.models import StrategyEvent
from trading.realtime.broadcast import publish


def event_payload(event: StrategyEvent) -> dict[str, Any]:
    """What pages receive about a journal row on the ``events`` group (the relay sends the same)."""
    return {
        "id": event.pk,
        "strategy_id": event.strategy_id,
        "strategy": event.strategy.name if event.strategy_id else None,
        "event_type": event.event_type,
        "severity": event.severity,
        "message": event.message,
        "metadata": event.metadata,
        "created_at": event.created_at.isoformat(),
    }


def on_event_recorded(sender: Any, event: StrategyEvent, **kwargs: Any) -> None:
    publish("events", "event.created", event_payload(event))


def on_trade_signal_created(sender: Any, trade_signal: Any, **kwargs: Any) -> None:
    publish(
        "signals",
        "signal.created",
        {
            "id": trade_signal.pk,
            "strategy_id": trade_signal.strategy_id,
            "symbol": trade_signal.stock.symbol,
            "timestamp": trade_signal.timestamp.isoformat(),
            "signal_type": trade_signal.signal_type,
            "price": str(trade_signal.price),
            "reasons": trade_signal.reasons,
        },
    )


def on_backtest_finished(sender: Any, run: Any, **kwargs: Any) -> None:
    publish("events", "backtest.finished", {"id": run.pk, "status": run.status, "metrics": run.metrics})


def on_order_created(sender: Any, order: Any, **kwargs: Any) -> None:
    publish("orders", "order.created", order_payload(order))


def on_order_updated(sender: Any, order: Any, **kwargs: Any) -> None:
    publish("orders", "order.updated", order_payload(order))


def on_fill_created(sender: Any, order: Any, fill: Any, **kwargs: Any) -> None:
    publish("orders", "fill.created", fill_payload(order, fill))


def on_trade_opened(sender: Any, trade: Any, **kwargs: Any) -> None:
    publish("trades", "trade.opened", trade_payload(trade))


def on_trade_updated(sender: Any, trade: Any, **kwargs: Any) -> None:
    publish("trades", "trade.updated", trade_payload(trade))


def on_trade_closed(sender: Any, trade: Any, **kwargs: Any) -> None:
    publish("trades", "trade.closed", trade_payload(trade))


def on_engine_command_requested(sender: Any, command: Any, **kwargs: Any) -> None:
    publish("engine", "command.requested", {"id": command.pk, "kind": command.kind})


def on_engine_command_finished(sender: Any, command: Any, result: str, **kwargs: Any) -> None:
    publish("engine", f"command.{command.status}", {"id": command.pk, "kind": command.kind, "result": result})


RECEIVERS = [
    (strategies_signals.event_recorded, on_event_recorded),
    (strategies_signals.trade_signal_created, on_trade_signal_created),
    (backtest_signals.backtest_finished, on_backtest_finished),
    (execution_signals.order_created, on_order_created),
    (execution_signals.order_updated, on_order_updated),
    (execution_signals.fill_created, on_fill_created),
    (execution_signals.trade_opened, on_trade_opened),
    (execution_signals.trade_updated, on_trade_updated),
    (execution_signals.trade_closed, on_trade_closed),
    (execution_signals.engine_command_requested, on_engine_command_requested),
    (execution_signals.engine_command_finished, on_engine_command_finished),
]


def connect() -> None:
    """Connect every receiver once (``dispatch_uid``: a second call changes nothing)."""
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"trading.realtime.{receiver.__name__}")
