"""Writes started from the pages, the trading API and the admin, in one place.

Each one delegates to the owning app's service (execution.commands for anything that
touches the broker, strategies.services for strategies, execution.backtest for backtests)
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
    """Activate or deactivate a strategy (the engine picks the change up at its next bar).

    strategies.services.set_active checks that an active strategy is valid and has stocks;
    its ValidationError becomes an ActionRefused with the reasons.
    """
    from django.core.exceptions import ValidationError

    try:
        service = _service("strategies.services", "set_active")
    except ActionUnavailable:
        service = None
    if service is not None:
        try:
            return service(strategy, active)
        except ValidationError as exc:
            raise ActionRefused("; ".join(exc.messages)) from None
    with transaction.atomic():
        if strategy.active != active:
            strategy.active = active
            strategy.save(update_fields=["active", "updated_at"])
            state = "activated" if active else "deactivated"
            record_event(
                f"strategy.{state}",
                f"strategy {strategy.name} {state} by {_user_name(user)}",
                strategy=strategy,
                user=_user_name(user),
            )
    return strategy


def save_strategy(form: Any, user: Any = None) -> Strategy:
    """Save a valid StrategyForm through strategies.services.update_strategy (which
    re-validates and journals); its field errors are put back on the form and re-raised."""
    from django.core.exceptions import ValidationError

    try:
        service = _service("strategies.services", "update_strategy")
    except ActionUnavailable:
        return form.save()
    try:
        return service(
            form.instance, stocks=list(form.cleaned_data.get("stocks") or []), **form.service_values()
        )
    except ValidationError as exc:
        form._update_errors(exc)
        raise


def _refusing(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service; its "this makes no sense" error (a ValueError such as
    execution.commands.CommandError) becomes an ActionRefused with its message."""
    try:
        return call(*args, **kwargs)
    except ActionUnavailable:
        raise
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None


def set_kill_switch(enabled: bool, strategy: Strategy | None = None, user: Any = None) -> Any:
    """Global (strategy None) or per-strategy kill switch, through execution.commands."""
    service = _service("execution.commands", "set_kill_switch")
    return _refusing(service, enabled, strategy=strategy, user=user)


def cancel_order(order: Any, user: Any = None) -> Any:
    if not order.is_open:
        raise ActionRefused(
            f"order {order.client_order_id} is {order.status}; only open orders can be cancelled"
        )
    return _refusing(_service("execution.commands", "request_cancel_order"), order, user)


def close_trade(trade: Any, user: Any = None) -> Any:
    if trade.status != "open":
        raise ActionRefused(f"trade #{trade.pk} is already closed")
    return _refusing(_service("execution.commands", "request_close_trade"), trade, user)


def start_backtest(strategy: Strategy, user: Any = None) -> Any:
    """Create a BacktestRun of ``strategy`` (its universe, timeframe and risk settings) and
    run it in the background (execution.backtest.tasks.run_backtest) once the row is committed.

    Without the task module the run happens in this request (still correct, just slower).
    """
    from django.core.exceptions import ValidationError

    try:
        tasks = importlib.import_module("execution.backtest.tasks")
        task = tasks.run_backtest
    except (ImportError, AttributeError):
        task = None
    try:
        if task is None:
            return _service("execution.backtest.services", "backtest_strategy_row")(strategy)
        create = _service("execution.backtest.services", "create_backtest_run")
        from execution.backtest import BacktestSettings

        with transaction.atomic():
            run = create(
                strategy_class=strategy.strategy_class,
                parameters=strategy.parameters,
                symbols=list(strategy.stocks.values_list("symbol", flat=True)),
                timeframe=strategy.timeframe,
                settings=BacktestSettings.from_strategy(strategy),
                strategy=strategy,
            )
            transaction.on_commit(lambda: task.enqueue(run.pk))
        return run
    except ValidationError as exc:
        raise ActionRefused("; ".join(exc.messages)) from None
