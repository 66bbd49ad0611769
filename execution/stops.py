"""Stop-loss and take-profit levels, computed from the entry fill price (backtest and live).

:func:`stop_target` is the compiled rule the backtester's loop calls; :func:`levels` is the
same rule for the live engine, so both place the same stop and target for the same fill.

- stop ``percent``: long ``fill * (1 - v/100)``, short ``fill * (1 + v/100)``
- stop ``atr``: long ``fill - v * ATR``, short ``fill + v * ATR`` (ATR of the signal bar)
- target ``percent`` / ``atr``: the mirror image above (long) or below (short) the fill
- target ``r_multiple``: ``v`` times the stop distance ``|fill - stop|`` beyond the fill

A level that does not apply is NaN in the compiled rule and ``None`` from :func:`levels`.
An ATR level whose ATR is unknown (warm-up) is NaN too: the backtester then rejects the
entry (it will not open a position without the stop it was asked for).
"""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from strategies.risk_profile import STOP_TYPES, TARGET_TYPES, RiskProfile

# The stop and target type names are strategies' vocabulary; these are their codes here.
STOP_NONE, STOP_PERCENT, STOP_ATR = STOP_TYPES["none"], STOP_TYPES["percent"], STOP_TYPES["atr"]
TARGET_NONE, TARGET_PERCENT = TARGET_TYPES["none"], TARGET_TYPES["percent"]
TARGET_ATR, TARGET_R = TARGET_TYPES["atr"], TARGET_TYPES["r_multiple"]


@njit(cache=True)
def stop_target(
    direction: int,
    fill_price: float,
    atr: float,
    stop_type: int,
    stop_value: float,
    target_type: int,
    target_value: float,
) -> tuple[float, float]:
    """(stop, target) for a position of ``direction`` (+1 long, -1 short) filled at ``fill_price``."""
    stop = math.nan
    if stop_type == STOP_PERCENT:
        stop = fill_price * (1.0 - direction * stop_value / 100.0)
    elif stop_type == STOP_ATR:
        stop = fill_price - direction * stop_value * atr  # NaN while ATR is unknown
    target = math.nan
    if target_type == TARGET_PERCENT:
        target = fill_price * (1.0 + direction * target_value / 100.0)
    elif target_type == TARGET_ATR:
        target = fill_price + direction * target_value * atr
    elif target_type == TARGET_R:
        target = fill_price + direction * target_value * abs(fill_price - stop)
    return stop, target


def levels(
    direction: int | str,
    fill_price: float,
    atr: float | None,
    strategy_settings: RiskProfile | Any,
) -> tuple[float | None, float | None]:
    """(stop, target) for a fill, exactly as the backtester computes them.

    ``direction`` is +1/-1 or "long"/"short"; ``atr`` is the ATR of the signal bar (None
    when the settings use no ATR level); ``strategy_settings`` is a risk profile (or
    backtest settings) or a Strategy row (converted with :meth:`RiskProfile.from_strategy`).
    """
    if isinstance(direction, str):
        direction = {"long": 1, "short": -1}[direction]
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (long) or -1 (short), got {direction!r}")
    settings = (
        strategy_settings
        if isinstance(strategy_settings, RiskProfile)
        else RiskProfile.from_strategy(strategy_settings)
    )
    stop, target = stop_target(
        int(direction),
        float(fill_price),
        math.nan if atr is None else float(atr),
        STOP_TYPES[settings.stop_type],
        float(settings.stop_value),
        TARGET_TYPES[settings.target_type],
        float(settings.target_value),
    )
    return (None if math.isnan(stop) else stop, None if math.isnan(target) else target)
