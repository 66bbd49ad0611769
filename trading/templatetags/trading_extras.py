"""Small formatting filters for the trader's pages."""

from typing import Any

from django import template

register = template.Library()


@register.filter
def metric(value: Any, kind: str = "num") -> str:
    """A backtest metric for display: ratios as %, numbers to 2 decimals, anything else as is."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "raw":
        return f"{value:g}" if isinstance(value, float) else str(value)
    return f"{value:,.2f}"
