"""The fill model and the cash rule, one implementation for the backtester, the paper
broker and the live pre-trade cash check.

The functions are numba-compiled: the backtester's loop calls them compiled, on floats.
The paper broker and ``execution.pipeline.Book`` call the same functions' Python form
(``py_func``, the very lines numba compiles) on Decimals through the wrappers at the
bottom, so that a money amount never takes a detour through a float.

**Fill model** (:func:`bar_fill`), for an order working on one bar:

- market: fills at the bar's open; slippage applies;
- stop: triggers when the bar trades through the stop (a buy stop at the high, a sell
  stop at the low) and fills at the stop, or at the open when the bar gaps through it;
  slippage applies;
- stop-limit: triggers like a stop, then fills at its limit (or the better trigger
  price) if the bar reaches the limit; no slippage;
- limit: fills when the bar reaches the limit, at the limit or at a better open; no
  slippage.

**Cash rule** (:func:`counts_in_free_cash`): there is no margin. The cash free to open
positions is the cash, less the value of every open short (its cash is held against it),
plus the value of every long on its way out (its sale will free it); a long that stays
changes nothing. The value is ``signed quantity * reference price``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from numba import njit

from execution.costs import slipped_price

Number = float | Decimal  # floats compiled, Decimals through py_func

ORDER_MARKET, ORDER_STOP, ORDER_STOP_LIMIT, ORDER_LIMIT = 0, 1, 2, 3
ORDER_KINDS = {
    "market": ORDER_MARKET,
    "stop": ORDER_STOP,
    "stop_limit": ORDER_STOP_LIMIT,
    "limit": ORDER_LIMIT,
}


@njit(cache=True)
def bar_fill(
    kind: int, is_buy: bool, open_: Number, high: Number, low: Number, stop: Number, limit: Number
) -> tuple[bool, Number, bool]:
    """(fills, raw price, slippage applies) for an order of ``kind`` on one bar.

    ``stop`` and ``limit`` are read only by the kinds that have them (NaN, or None on
    the Decimal path, otherwise). The raw price is before slippage.
    """
    if kind == ORDER_MARKET:
        return True, open_, True
    if kind in (ORDER_STOP, ORDER_STOP_LIMIT):
        if not ((is_buy and high >= stop) or (not is_buy and low <= stop)):
            return False, open_, False
        trigger = max(open_, stop) if is_buy else min(open_, stop)
        if kind == ORDER_STOP:
            return True, trigger, True
        if (is_buy and low <= limit) or (not is_buy and high >= limit):
            return True, (min(trigger, limit) if is_buy else max(trigger, limit)), False
        return False, open_, False
    if is_buy and low <= limit:
        return True, min(open_, limit), False
    if not is_buy and high >= limit:
        return True, max(open_, limit), False
    return False, open_, False


@njit(cache=True)
def fill_price(
    kind: int,
    is_buy: bool,
    open_: float,
    high: float,
    low: float,
    stop: float,
    limit: float,
    slippage_bps: float,
) -> float:
    """The fill price, slippage included, of an order on one bar; NaN when it does not fill."""
    fills, price, slips = bar_fill(kind, is_buy, open_, high, low, stop, limit)
    if not fills:
        return math.nan
    if slips:
        return slipped_price(price, is_buy, slippage_bps)
    return price


@njit(cache=True)
def counts_in_free_cash(quantity: Number, exiting: bool) -> bool:
    """The cash rule: whether a position of signed ``quantity`` moves the free cash by its
    value (``quantity * price``): a short always (held against it), a long only on its
    way out (freed by its sale)."""
    return quantity < 0 or exiting


@njit(cache=True)
def free_cash_change(quantity: float, price: float, exiting: bool) -> float:
    """What one position adds to the free cash (negative for a short), by the cash rule."""
    if counts_in_free_cash(quantity, exiting):
        return quantity * price
    return 0.0


# --- Decimal wrappers (the paper broker, the pre-trade check) -------------------------------


def bar_fill_decimal(
    order_type: str,
    is_buy: bool,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    stop: Decimal | None,
    limit: Decimal | None,
) -> tuple[Decimal, bool] | None:
    """:func:`bar_fill` in Decimals: (raw price, slippage applies), or None when the order
    does not fill on this bar."""
    fills, price, slips = bar_fill.py_func(ORDER_KINDS[order_type], is_buy, open_, high, low, stop, limit)
    return (price, slips) if fills else None


def free_cash_decimal(cash: Decimal, positions: Iterable[tuple[Decimal, Decimal, bool]]) -> Decimal:
    """The free cash by the cash rule, in Decimals: ``cash`` and the positions as
    (signed quantity, reference price, on its way out)."""
    free = cash
    for quantity, price, exiting in positions:
        if counts_in_free_cash.py_func(quantity, exiting):
            free += quantity * price
    return free
