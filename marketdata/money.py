"""Numbers as Decimal: one conversion and one rounding rule, for every app.

The conversion (:func:`as_decimal`): a float becomes the Decimal of its shortest repr, the
digits it was written or parsed with (``0.1`` is 0.1, not 0.1000000000000000055511...);
a Decimal stays as it is; anything else (int, str, numpy integers) goes through ``str``.

The rounding rule (:func:`to_decimal`): half-even to six decimals (:data:`STEP`), the
scale of every price, quantity and amount column (NUMERIC(18, 6)). It rounds the shortest
repr, so a float rounds as the number it prints as: 1.0000015 becomes 1.000002.

It lives in the lowest app so that every layer above can import it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

STEP = Decimal("0.000001")  # six decimals: NUMERIC(18, 6)


def as_decimal(value: Decimal | float | int | str) -> Decimal:
    """``value`` as Decimal, exactly as written (no rounding)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # float(): numpy's float64 is a float whose repr is "np.float64(...)".
        return Decimal(repr(float(value)))
    return Decimal(str(value))


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """``value`` as Decimal rounded half-even to six decimals (exponent -6)."""
    return as_decimal(value).quantize(STEP, rounding=ROUND_HALF_EVEN)
