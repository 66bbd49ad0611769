"""One float -> Decimal conversion and one rounding rule (marketdata.money)."""

from decimal import Decimal

import numpy as np
import pytest

from marketdata.money import STEP, as_decimal, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),  # the float's shortest repr, not its binary expansion
        (np.float64(187.44), "187.44"),  # numpy's float64 too (its repr is "np.float64(...)")
        (Decimal("1.50"), "1.50"),  # a Decimal stays as it is
        ("100000", "100000"),
        (7, "7"),
        (1.0049835, "1.0049835"),  # no rounding
    ],
)
def test_as_decimal_keeps_the_digits_as_written(value, expected):
    result = as_decimal(value)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.100000"),
        (98.00000000000001, "98.000000"),  # float noise goes
        (1.0000015, "1.000002"),  # half-even on the printed digits: the tie goes to even
        (1.0000025, "1.000002"),
        (np.float64(2.5), "2.500000"),
        (Decimal("1.23456789"), "1.234568"),
        (7, "7.000000"),
    ],
)
def test_to_decimal_rounds_half_even_to_six_decimals(value, expected):
    result = to_decimal(value)
    assert str(result) == expected
    assert result.as_tuple().exponent == STEP.as_tuple().exponent
