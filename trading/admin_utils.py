"""Shared admin helpers: pretty, read-only JSON."""

import json

from django.utils.html import format_html


def pretty_json(value) -> str:
    """Render a JSON value as an indented, escaped <pre> block."""
    if value in (None, {}, []):
        return "—"
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str),
    )
