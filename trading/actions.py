"""Writes started from the pages, the trading API and the admin, in one place.

Each one delegates to the owning app's service (execution.commands for anything that
touches the broker, strategies.services / strategies.tasks for strategies and backtests)
so that the page, the API and the admin behave the same. Only the engine talks to the
broker: cancel, close and the kill switch become commands it picks up.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.db import transaction

from strategies.events import record_event
from strategies.models import Strategy


class ActionUnavailable(RuntimeError):
    """The service behind an action is not installed (yet); the message says which."""


class ActionRefused(ValueError):
    """The action does not apply to this object (e.g. cancelling a filled order)."""


def _service(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ActionUnavailable(f"{module}.{name} is not available") from None


def _user_name(user: Any) -> str:
    return getattr(user, "username", "") or "system"


def set_strategy_active(strategy: Strategy, active: bool, user: Any = None) -> Strategy:
    """Activate or deactivate a strategy (the engine picks the change up at its next bar)."""
    name = "activate_strategy" if active else "deactivate_strategy"
    try:
        service = _service("strategies.services", name)
    except ActionUnavailable:
        service = None
    if service is not None:
        result = service(strategy, user=user)
        return result if isinstance(result, Strategy) else strategy
    with transaction.atomic():
        if strategy.active != active:
            strategy.active = active
            strategy.save(update_fields=["active", "updated_at"])
            record_event(
                "strategy.activated" if active else "strategy.deactivated",
                f"{strategy.name} {'activated' if active else 'deactivated'} by {_user_name(user)}",
                strategy=strategy,
                user=_user_name(user),
            )
    return strategy


def set_kill_switch(enabled: bool, strategy: Strategy | None = None, user: Any = None) -> Any:
    """Global (strategy None) or per-strategy kill switch, through execution.commands."""
    service = _service("execution.commands", "set_kill_switch")
    return service(enabled, strategy=strategy, user=user)


def cancel_order(order: Any, user: Any = None) -> Any:
    if not order.is_open:
        raise ActionRefused(
            f"order {order.client_order_id} is {order.status}; only open orders can be cancelled"
        )
    return _service("execution.commands", "request_cancel_order")(order, user)


def close_trade(trade: Any, user: Any = None) -> Any:
    if trade.status != "open":
        raise ActionRefused(f"trade #{trade.pk} is already closed")
    return _service("execution.commands", "request_close_trade")(trade, user)


def start_backtest(strategy: Strategy, user: Any = None, **options: Any) -> Any:
    """Create a BacktestRun for ``strategy`` and enqueue it; returns the run."""
    for module, name in (
        ("strategies.services", "start_backtest"),
        ("strategies.services", "create_backtest"),
    ):
        try:
            service = _service(module, name)
        except ActionUnavailable:
            continue
        return service(strategy, **options)
    raise ActionUnavailable("strategies.services.start_backtest is not available")
