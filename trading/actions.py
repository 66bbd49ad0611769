"""Writes started from the pages and the trading API, in one place.

Each one delegates to the owning app's service (execution.engine_commands for anything that
touches the broker, strategies.services for strategies, execution.backtest for backtests)
so that the pages and the API behave the same (the admins call the same services). Only
the engine talks to the broker: cancel, close and the kill switch become commands it
picks up.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from execution import engine_commands
from execution.backtest import tasks as backtest_tasks
from execution.models import BacktestRun, Order, Trade
from strategies import services as strategy_services
from strategies.models import Strategy


class ActionRefused(ValueError):
    """The action does not apply to this object (e.g. cancelling a filled order)."""


def set_strategy_active(strategy: Strategy, active: bool, user: Any = None) -> Strategy:
    """Activate or deactivate a strategy (the engine picks the change up at its next bar).

    strategies.services.set_active checks that an active strategy is valid and has stocks;
    its ValidationError becomes an ActionRefused with the reasons.
    """
    try:
        return strategy_services.set_active(strategy, active)
    except ValidationError as exc:
        raise ActionRefused("; ".join(exc.messages)) from None


def save_strategy(form: Any, user: Any = None) -> Strategy:
    """Save a valid StrategyForm through strategies.services.update_strategy (which
    re-validates and journals); its field errors are put back on the form and re-raised."""
    try:
        return strategy_services.update_strategy(
            form.instance, stocks=list(form.cleaned_data.get("stocks") or []), **form.service_values()
        )
    except ValidationError as exc:
        form._update_errors(exc)
        raise


def _refusing(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service; its "this makes no sense" error (a ValueError such as
    execution.engine_commands.CommandError) becomes an ActionRefused with its message."""
    try:
        return call(*args, **kwargs)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None


def set_kill_switch(enabled: bool, strategy: Strategy | None = None, user: Any = None) -> Any:
    """Global (strategy None) or per-strategy kill switch, through execution.engine_commands."""
    return _refusing(engine_commands.set_kill_switch, enabled, strategy=strategy, user=user)


def cancel_order(order: Order, user: Any = None) -> Any:
    if not order.is_open:
        raise ActionRefused(
            f"order {order.client_order_id} is {order.status}; only open orders can be cancelled"
        )
    return _refusing(engine_commands.request_cancel_order, order, user)


def request_close(trade: Trade, user: Any = None) -> Any:
    if trade.status != "open":
        raise ActionRefused(f"trade #{trade.pk} is already closed")
    return _refusing(engine_commands.request_close_trade, trade, user)


def start_backtest(strategy: Strategy, user: Any = None) -> BacktestRun:
    """Create a BacktestRun of ``strategy`` (its universe, timeframe and risk settings) and
    run it in the background (execution.backtest.tasks.run_backtest) once the row is committed."""
    try:
        return backtest_tasks.start_backtest(strategy)
    except ValidationError as exc:
        raise ActionRefused("; ".join(exc.messages)) from None
