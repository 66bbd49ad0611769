"""Validation of a Strategy row: class, parameters and risk settings, one message per field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategies.base import ParameterError
from strategies.registry import UnknownStrategy, get_strategy
from strategies.risk_profile import RiskProfile, SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from strategies.models import Strategy

# RiskProfile field -> the Strategy model field that feeds it
_MODEL_FIELDS = {
    "sizing_method": "sizing_method",
    "position_fraction": "position_fraction",
    "risk_per_trade": "risk_per_trade",
    "stop_type": "stop_loss_type",
    "stop_value": "stop_loss_value",
    "target_type": "take_profit_type",
    "target_value": "take_profit_value",
    "max_open_positions": "max_open_positions",
}


def parameter_errors(strategy_class: str, parameters) -> dict[str, str]:
    """Parameter field -> message (``strategy_class`` when the class itself is unknown)."""
    try:
        cls = get_strategy(strategy_class)
    except UnknownStrategy as exc:
        return {"strategy_class": str(exc.args[0])}
    try:
        cls.validate_parameters(parameters)
    except ParameterError as exc:
        return exc.errors
    return {}


def strategy_errors(strategy: Strategy) -> dict[str, list[str]]:
    """Model field -> messages for everything wrong with ``strategy`` (empty when valid)."""
    errors: dict[str, list[str]] = {}
    found = parameter_errors(strategy.strategy_class, strategy.parameters)
    if "strategy_class" in found and len(found) == 1:
        errors["strategy_class"] = [found["strategy_class"]]
    elif found:
        errors["parameters"] = [f"{field}: {message}" for field, message in found.items()]
    if strategy.allow_short and "strategy_class" not in errors:
        cls = get_strategy(strategy.strategy_class)
        if not cls.supports_short:
            errors["allow_short"] = [f"{cls.name} does not support shorts"]
    try:
        RiskProfile.from_strategy(strategy)
    except SettingsError as exc:
        for field, message in exc.errors.items():
            if field.startswith("risk_settings."):
                errors.setdefault("risk_settings", []).append(f"{field.split('.', 1)[1]}: {message}")
            else:
                errors.setdefault(_MODEL_FIELDS.get(field, "risk_settings"), []).append(
                    message if field in _MODEL_FIELDS else f"{field}: {message}"
                )
    except (TypeError, ValueError) as exc:
        errors.setdefault("risk_settings", []).append(str(exc))
    return errors
