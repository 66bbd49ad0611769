"""Position sizing, shared by the backtester (compiled) and live order intents.

Two methods: a fixed fraction of equity per position, or a fixed fraction of equity
risked over the distance to the stop. Whole shares unless fractional is allowed.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

from numba import njit

from execution.costs import CostModel, commission_for
from strategies.risk_profile import SIZING_METHODS

# The sizing method names are strategies' vocabulary; these are their codes here.
SIZING_FIXED_FRACTION = SIZING_METHODS["fixed_fraction"]
SIZING_FIXED_RISK = SIZING_METHODS["fixed_risk"]


@njit(cache=True)
def position_size(
    method: int,
    equity: float,
    cash: float,
    price: float,
    stop_distance: float,
    fraction: float,
    risk_fraction: float,
    fractional: bool,
) -> float:
    """Shares to buy (or sell short) at ``price``; never more than ``cash`` buys.

    Fixed risk without a stop (distance <= 0) falls back to the fixed fraction.
    """
    if price <= 0.0 or equity <= 0.0:
        return 0.0
    if method == SIZING_FIXED_RISK and stop_distance > 0.0:
        quantity = equity * risk_fraction / stop_distance
    else:
        quantity = equity * fraction / price
    affordable = cash / price
    if quantity > affordable:
        quantity = affordable
    if quantity < 0.0:
        return 0.0
    if not fractional:
        return math.floor(quantity + 1e-9)
    return math.floor(quantity * 10000.0 + 1e-9) / 10000.0


@njit(cache=True)
def fit_to_cash(
    quantity: float,
    price: float,
    cash: float,
    model: int,
    per_share: float,
    minimum: float,
    maximum_pct: float,
    percent: float,
    fractional: bool,
) -> float:
    """``quantity`` cut (never raised) so that ``quantity * price`` plus its commission fits
    in ``cash``: the buying-power rule applied when a market order fills at a price the
    sizing could not know (the next bar's open). Returns 0 when not even one unit fits."""
    if quantity <= 0.0 or price <= 0.0 or cash <= 0.0:
        return 0.0
    step = 0.0001 if fractional else 1.0
    fee = commission_for(quantity, price, model, per_share, minimum, maximum_pct, percent)
    if quantity * price + fee <= cash:
        return quantity
    # Largest step multiple whose cost fits; the commission only shrinks with the quantity,
    # so start from the cash left after this quantity's fee and walk down a few steps.
    quantity = math.floor((cash - fee) / price / step + 1e-9) * step
    while quantity > 0.0:
        fee = commission_for(quantity, price, model, per_share, minimum, maximum_pct, percent)
        if quantity * price + fee <= cash:
            return quantity
        quantity = math.floor(quantity / step - 1.0 + 1e-9) * step
    return 0.0


def fit_to_cash_decimal(
    quantity: Decimal, price: Decimal, cash: Decimal, costs: CostModel, fractional: bool
) -> Decimal:
    """:func:`fit_to_cash` for the paper broker, as a Decimal quantity."""
    fitted = fit_to_cash(float(quantity), float(price), float(cash), *costs.as_args(), fractional)
    step = Decimal("0.0001") if fractional else Decimal("1")
    return Decimal(repr(fitted)).quantize(step, rounding=ROUND_DOWN)


def position_size_decimal(
    method: str,
    equity: Decimal,
    cash: Decimal,
    price: Decimal,
    stop_distance: Decimal | None,
    fraction: Decimal,
    risk_fraction: Decimal,
    fractional: bool,
) -> Decimal:
    """:func:`position_size` for live order intents, as a Decimal quantity."""
    try:
        code = SIZING_METHODS[method]
    except KeyError:
        raise ValueError(
            f"sizing method must be one of {', '.join(SIZING_METHODS)}, got {method!r}"
        ) from None
    quantity = position_size(
        code,
        float(equity),
        float(cash),
        float(price),
        float(stop_distance or 0),
        float(fraction),
        float(risk_fraction),
        fractional,
    )
    step = Decimal("0.0001") if fractional else Decimal("1")
    return Decimal(repr(quantity)).quantize(step, rounding=ROUND_DOWN)
