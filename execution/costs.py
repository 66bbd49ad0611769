"""Commission and slippage models, shared by the backtester (compiled) and the paper broker.

The settings (:class:`CostModel`, a part of a strategy's risk profile) are
``strategies.risk_profile``'s; this module computes with them.

The functions are numba-compiled so that the backtester's array loop calls exactly the
code the paper broker calls (through the Decimal wrappers at the bottom): one model,
never a copy.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from numba import njit

from strategies.risk_profile import COMMISSION_MODELS, CostModel

# The commission model names are strategies' vocabulary; these are their codes here.
COMMISSION_NONE = COMMISSION_MODELS["none"]
COMMISSION_PER_SHARE = COMMISSION_MODELS["per_share"]
COMMISSION_PERCENT = COMMISSION_MODELS["percent"]


@njit(cache=True)
def commission_for(
    quantity: float,
    price: float,
    model: int,
    per_share: float,
    minimum: float,
    maximum_pct: float,
    percent: float,
) -> float:
    """Commission in account currency for one fill of ``quantity`` at ``price``."""
    if quantity <= 0.0:
        return 0.0
    value = quantity * price
    if model == COMMISSION_PER_SHARE:
        fee = quantity * per_share
        if fee < minimum:
            fee = minimum
        cap = value * maximum_pct
        if fee > cap:
            fee = cap
        return fee
    if model == COMMISSION_PERCENT:
        return value * percent
    return 0.0


@njit(cache=True)
def slipped_price(price: float, is_buy: bool, slippage_bps: float) -> float:
    """The fill price after slippage: buys pay more, sells receive less."""
    if is_buy:
        return price * (1.0 + slippage_bps / 10000.0)
    return price * (1.0 - slippage_bps / 10000.0)


CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.000001")


def commission_decimal(model: CostModel, quantity: Decimal, price: Decimal) -> Decimal:
    """:func:`commission_for` for the paper broker, rounded to the cent."""
    fee = commission_for(float(quantity), float(price), *model.as_args())
    return Decimal(repr(fee)).quantize(CENT, rounding=ROUND_HALF_UP)


def fill_price_decimal(model: CostModel, price: Decimal, is_buy: bool) -> Decimal:
    """:func:`slipped_price` for the paper broker, as a Decimal price."""
    filled = slipped_price(float(price), is_buy, model.slippage_bps)
    return Decimal(repr(filled)).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
