"""Commission and slippage models, shared by the backtester (compiled) and the paper broker.

The functions are numba-compiled so that the backtester's array loop calls exactly the
code the paper broker calls (through the Decimal wrappers at the bottom): one model,
never a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from numba import njit

COMMISSION_NONE = 0
COMMISSION_PER_SHARE = 1
COMMISSION_PERCENT = 2

COMMISSION_MODELS = {
    "none": COMMISSION_NONE,
    "per_share": COMMISSION_PER_SHARE,
    "percent": COMMISSION_PERCENT,
}


@dataclass(frozen=True)
class CostModel:
    """Commission and slippage settings. Defaults: the IBKR fixed schedule, 1 bp slippage.

    per_share: USD 0.005 a share, at least USD 1.00, at most 1% of the trade value.
    percent: ``percent`` of the trade value (0.001 = 0.1 %).
    """

    commission: str = "per_share"
    per_share: float = 0.005
    minimum: float = 1.00
    maximum_pct: float = 0.01
    percent: float = 0.0
    slippage_bps: float = 1.0

    def __post_init__(self):
        if self.commission not in COMMISSION_MODELS:
            raise ValueError(
                f"commission must be one of {', '.join(COMMISSION_MODELS)}, got {self.commission!r}"
            )
        for name in ("per_share", "minimum", "maximum_pct", "percent", "slippage_bps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @property
    def code(self) -> int:
        return COMMISSION_MODELS[self.commission]

    def as_args(self) -> tuple[int, float, float, float, float]:
        """Positional arguments for :func:`commission_for` after quantity and price."""
        return (self.code, self.per_share, self.minimum, self.maximum_pct, self.percent)


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
