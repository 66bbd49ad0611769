"""Requests from pages and the API, carried out by the engine (the broker's one owner).

A page never calls the broker: it writes an :class:`~execution.models.EngineCommand`
that the engine picks up within a second (:func:`process_commands`) and confirms through
events (``command.done`` / ``command.failed`` and the order/trade events that follow).

The kill switch is also a flag that the risk checks read directly, so new orders are
blocked the moment it is set, even before the engine has cancelled anything.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from execution import exits, order_lifecycle, risk
from execution.brokers.base import Broker
from execution.models import (
    OPEN_ORDER_STATUSES,
    EngineCommand,
    EngineCommandKind,
    EngineCommandStatus,
    ExitReason,
    Order,
    OrderPurpose,
    Trade,
    TradeStatus,
)
from execution.signals import engine_command_finished, engine_command_requested
from strategies.events import record_event
from strategies.models import Severity, Strategy


class CommandError(ValueError):
    """The request makes no sense (e.g. cancelling a filled order); says why."""


def _who(user) -> str:
    return getattr(user, "username", "") or "system"


def _enqueue(kind: str, user=None, **targets) -> EngineCommand:
    command = EngineCommand.objects.create(
        kind=kind, requested_by=user if getattr(user, "pk", None) else None, **targets
    )
    record_event(
        "command.requested",
        f"{kind.replace('_', ' ')} requested by {_who(user)}",
        strategy=targets.get("strategy"),
        command_id=command.pk,
        kind=kind,
    )
    engine_command_requested.send(sender=EngineCommand, command=command)
    return command


@transaction.atomic
def request_cancel_order(order: Order, user=None) -> EngineCommand:
    """Ask the engine to cancel ``order``; CommandError if it is no longer open."""
    if order.status not in OPEN_ORDER_STATUSES:
        raise CommandError(f"order {order.client_order_id} is {order.status}, not open")
    return _enqueue(EngineCommandKind.CANCEL_ORDER, user, order=order, strategy=order.strategy)


@transaction.atomic
def request_close_trade(trade: Trade, user=None) -> EngineCommand:
    """Ask the engine to close ``trade`` at market (exit reason: manual)."""
    if trade.status != TradeStatus.OPEN:
        raise CommandError(f"trade {trade.pk} is already closed")
    return _enqueue(EngineCommandKind.CLOSE_TRADE, user, trade=trade, strategy=trade.strategy)


@transaction.atomic
def set_kill_switch(
    enabled: bool, strategy: Strategy | None = None, user=None, *, close_positions: bool = False
) -> EngineCommand:
    """Turn a kill switch on or off, globally (``strategy`` None) or for one strategy.

    On: new entries are refused at once; the engine then cancels the open orders in its
    scope (except the stop-loss and take-profit of open positions, which only reduce
    risk) and, with ``close_positions``, closes the open trades (exit reason: kill
    switch). Off: entries are allowed again."""
    if strategy is None:
        risk.set_global_kill_switch(enabled, by=_who(user))
    else:
        Strategy.objects.filter(pk=strategy.pk).update(kill_switch=enabled)
        strategy.kill_switch = enabled
    scope = strategy.name if strategy else "all strategies"
    record_event(
        "kill_switch.on" if enabled else "kill_switch.off",
        f"kill switch {'on' if enabled else 'off'} for {scope} by {_who(user)}",
        strategy=strategy,
        severity=Severity.WARNING if enabled else Severity.INFO,
        close_positions=close_positions,
    )
    kind = EngineCommandKind.KILL_SWITCH_ON if enabled else EngineCommandKind.KILL_SWITCH_OFF
    return _enqueue(kind, user, strategy=strategy, options={"close_positions": close_positions})


# --- the engine side ------------------------------------------------------------------------


def _kill(command: EngineCommand, broker: Broker, at: datetime | None) -> str:
    orders = Order.objects.filter(status__in=OPEN_ORDER_STATUSES).exclude(
        purpose__in=(OrderPurpose.STOP_LOSS, OrderPurpose.TAKE_PROFIT)
    )
    trades = Trade.objects.filter(status=TradeStatus.OPEN)
    if command.strategy_id:
        orders = orders.filter(strategy_id=command.strategy_id)
        trades = trades.filter(strategy_id=command.strategy_id)
    cancelled = sum(
        1
        for order in orders.select_related("stock", "strategy")
        if order.purpose != OrderPurpose.EXIT
        and order_lifecycle.cancel_order(order, broker, reason="kill switch")
    )
    closed = 0
    if (command.options or {}).get("close_positions"):
        for trade in trades.select_related("stock", "strategy"):
            if exits.send_exit_order(trade, broker, ExitReason.KILL_SWITCH, at=at, key=f"K{command.pk}"):
                closed += 1
    return f"{cancelled} orders cancelled, {closed} trades closing"


def execute_command(command: EngineCommand, broker: Broker, at: datetime | None = None) -> EngineCommand:
    """Carry out one command (engine only) and record the outcome."""
    try:
        if command.kind == EngineCommandKind.CANCEL_ORDER:
            if not order_lifecycle.cancel_order(
                command.order, broker, reason=f"requested by {_who(command.requested_by)}"
            ):
                raise CommandError(f"order {command.order.client_order_id} is not open")
            result = f"cancel of {command.order.client_order_id} sent"
        elif command.kind == EngineCommandKind.CLOSE_TRADE:
            order = exits.send_exit_order(
                command.trade, broker, ExitReason.MANUAL, at=at, key=f"C{command.pk}"
            )
            if order is None:
                raise CommandError(f"trade {command.trade_id} is closed or already closing")
            result = f"exit order {order.client_order_id} sent"
        elif command.kind == EngineCommandKind.KILL_SWITCH_ON:
            result = _kill(command, broker, at)
        else:
            result = "entries allowed again"
        command.status = EngineCommandStatus.DONE
    except Exception as exc:  # any failure is reported on the command, never crashes the engine
        command.status = EngineCommandStatus.FAILED
        result = str(exc) or type(exc).__name__
    command.result = result[:2000]
    command.processed_at = timezone.now()
    command.save(update_fields=["status", "result", "processed_at"])
    record_event(
        f"command.{command.status}",
        f"{command.get_kind_display()}: {result}",
        strategy=command.strategy,
        severity=Severity.INFO if command.status == EngineCommandStatus.DONE else Severity.WARNING,
        command_id=command.pk,
    )
    engine_command_finished.send(sender=EngineCommand, command=command, result=result)
    return command


def process_commands(broker: Broker, at: datetime | None = None, limit: int = 50) -> list[EngineCommand]:
    """Run the pending commands, oldest first."""
    pending = list(
        EngineCommand.objects.filter(status=EngineCommandStatus.PENDING)
        .select_related(
            "order__stock", "order__strategy", "trade__stock", "trade__strategy", "strategy", "requested_by"
        )
        .order_by("id")[:limit]
    )
    return [execute_command(c, broker, at) for c in pending]
