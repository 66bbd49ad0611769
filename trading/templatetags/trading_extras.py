"""Small formatting filters for the trader's pages."""

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def metric(value: Any, kind: str = "num") -> str:
    """A backtest metric for display: ratios as %, numbers to 2 decimals, anything else as is."""
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "raw":
        return f"{value:g}" if isinstance(value, float) else str(value)
    return f"{value:,.2f}"


@register.filter
def context_value(value: Any) -> str:
    """A market-context value for display: lists joined, numbers rounded."""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)
