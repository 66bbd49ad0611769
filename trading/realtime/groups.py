"""Names of the Channels groups pages can subscribe to.

Group names are restricted by Channels to ASCII letters, digits, hyphens, underscores
and periods; ``bars.<SYMBOL>`` is the per-symbol price feed.
"""

import re

STATIC_GROUPS = frozenset({"events", "signals", "orders", "trades", "engine"})
_BAR_GROUP = re.compile(r"^bars\.[A-Za-z0-9_\-\.]{1,32}$")


def is_valid_group(name: str) -> bool:
    return name in STATIC_GROUPS or bool(_BAR_GROUP.match(name))


def bars_group(symbol: str) -> str:
    return f"bars.{symbol}"
