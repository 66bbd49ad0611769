"""The compiled functions run as plain Python give the same results as compiled.

numba-compiled code is invisible to coverage and to debuggers; running every ``@njit``
function through its ``py_func`` against the reference simulator checks the Python
semantics of the loop too (and lets coverage see it).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba.core.registry import CPUDispatcher

import execution.backtest.engine
import execution.costs
import execution.fills
import execution.protection_rules
import execution.sizing
import execution.stops
from execution.backtest import engine
from execution.tests.backtest_reference import Reference
from execution.tests.test_backtest_reference import build_settings, random_market, settings_strategy

MODULES = (
    execution.costs,
    execution.fills,
    execution.sizing,
    execution.protection_rules,
    execution.stops,
    execution.backtest.engine,
)


@pytest.fixture
def pure_python(monkeypatch):
    """Every numba dispatcher in the backtester's modules replaced by its Python function."""
    for module in MODULES:
        for name, value in list(vars(module).items()):
            if isinstance(value, CPUDispatcher):
                monkeypatch.setattr(module, name, value.py_func)


# The compiled loop itself, captured at import, before any test patches the module.
_SIMULATE = engine.simulate


def compiled_run(arrays, params):
    n = arrays[3].shape[0]
    max_trades = int(np.count_nonzero(arrays[5] & (engine.ENTRY_LONG | engine.ENTRY_SHORT))) + 1
    trades = np.empty((max_trades, engine.T_SIZE))
    equity = np.empty(n)
    summary = np.zeros(3)
    _SIMULATE(*arrays, params, trades, equity, np.zeros(n, dtype=np.bool_), summary)
    return trades[: int(summary[engine.S_TRADES])], equity


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    m=st.integers(1, 3),
    gaps=st.booleans(),
    raw=settings_strategy,
)
def test_python_loop_matches_compiled_and_reference(pure_python, seed, n, m, gaps, raw):
    s = build_settings(raw)
    arrays = random_market(seed, n, m, gaps)
    trades, equity, in_market, rejected, cash = engine.run_arrays(*arrays, s.as_array())
    ref = Reference(s, m)
    ref.run(*(a.tolist() for a in arrays))
    assert len(trades) == len(ref.trades) and rejected == ref.rejected
    assert round(cash, 2) == round(ref.cash, 2)
    expected = compiled_run(arrays, s.as_array())
    np.testing.assert_array_equal(trades, expected[0])
    np.testing.assert_array_equal(equity, expected[1])


def test_shared_rules_in_python(pure_python):
    from execution import protection_rules as pr
    from execution.costs import commission_for, slipped_price
    from execution.sizing import fit_to_cash, position_size
    from execution.stops import stop_target

    assert commission_for(100, 10.0, 1, 0.005, 1.0, 0.01, 0.0) == 1.0  # minimum
    assert commission_for(10000, 10.0, 1, 0.005, 1.0, 0.01, 0.0) == 50.0  # per share
    assert commission_for(1000, 0.05, 1, 0.005, 1.0, 0.01, 0.0) == pytest.approx(0.5)  # 1 % cap
    assert commission_for(10, 10.0, 2, 0, 0, 0, 0.001) == pytest.approx(0.1)
    assert (
        commission_for(10, 10.0, 0, 0, 0, 0, 0) == 0.0 and commission_for(0, 10.0, 1, 0.005, 1, 0.01, 0) == 0
    )
    assert slipped_price(100.0, True, 10) == pytest.approx(100.1)
    assert slipped_price(100.0, False, 10) == pytest.approx(99.9)
    assert position_size(0, 1000.0, 1000.0, 10.0, 0.0, 0.5, 0.01, False) == 50
    assert position_size(1, 1000.0, 1000.0, 10.0, 0.5, 0.5, 0.01, False) == 20  # risk 10 over 0.5
    assert position_size(0, 1000.0, 100.0, 10.0, 0.0, 0.5, 0.01, False) == 10  # cash cap
    assert position_size(0, 1000.0, 1000.0, 3.0, 0.0, 0.5, 0.01, True) == pytest.approx(166.6666)
    assert position_size(0, 0.0, 1000.0, 3.0, 0.0, 0.5, 0.01, True) == 0
    assert position_size(0, 1000.0, -5.0, 3.0, 0.0, 0.5, 0.01, True) == 0
    assert fit_to_cash(100, 10.0, 1000.5, 1, 0.005, 1.0, 0.01, 0.0, False) == 99
    assert fit_to_cash(100, 10.0, 5000, 1, 0.005, 1.0, 0.01, 0.0, False) == 100
    assert fit_to_cash(100, 10.0, 0.5, 1, 0.005, 1.0, 0.01, 0.0, False) == 0
    assert fit_to_cash(0, 10.0, 100, 0, 0, 0, 0, 0, False) == 0
    assert fit_to_cash(1, 10.0, 10.5, 1, 0.005, 1.0, 1.0, 0.0, False) == 0  # the fee does not fit
    assert stop_target(1, 100.0, 2.0, 2, 1.5, 2, 3.0) == (97.0, 106.0)
    stop, target = stop_target(-1, 100.0, np.nan, 1, 5.0, 3, 2.0)
    assert (stop, target) == pytest.approx((105.0, 90.0))
    assert np.isnan(stop_target(1, 100.0, np.nan, 2, 1.0, 0, 0.0)[0])
    assert pr.is_locked(3, 5) and not pr.is_locked(5, 5)
    assert pr.pause_until(10, 4) == 14 and pr.cooldown_until(10, 0) == 0 and pr.cooldown_until(10, 3) == 13
    bars = np.array([1, 5, 8, 9, 0, 0])
    assert pr.count_in_window(bars, 4, 9, 5) == 3  # 5, 8, 9 lie in 5..9
    assert pr.count_in_window(bars, 4, 7, 5) == 1  # 9 and 8 are later, 1 is too old
    assert pr.stop_streak_triggered(bars, 4, 9, 5, 3) and not pr.stop_streak_triggered(bars, 4, 9, 5, 4)
    assert not pr.stop_streak_triggered(bars, 4, 9, 0, 1)
    equity = np.array([100.0, 120.0, 110.0, 90.0])
    assert pr.window_drawdown(equity, 3, 3) == pytest.approx(0.25)
    assert pr.window_drawdown(equity, 3, 1) == 0.0
    assert pr.window_drawdown(np.array([0.0, 0.0]), 1, 5) == 0.0
    assert pr.drawdown_triggered(equity, 3, 10, 0.2) and not pr.drawdown_triggered(equity, 3, 10, 0.3)
    assert not pr.drawdown_triggered(equity, 3, 10, 0.0)


def test_decimal_wrappers_for_the_paper_broker():
    from decimal import Decimal

    from execution.costs import CostModel, commission_decimal, fill_price_decimal
    from execution.sizing import fit_to_cash_decimal, position_size_decimal

    model = CostModel()
    assert commission_decimal(model, Decimal("100"), Decimal("50")) == Decimal("1.00")
    assert fill_price_decimal(model, Decimal("100"), True) == Decimal("100.010000")
    assert position_size_decimal(
        "fixed_fraction",
        Decimal("1000"),
        Decimal("1000"),
        Decimal("3"),
        None,
        Decimal("0.5"),
        Decimal("0.01"),
        True,
    ) == Decimal("166.6666")
    with pytest.raises(ValueError, match="sizing method"):
        position_size_decimal(
            "all_in", Decimal(1), Decimal(1), Decimal(1), None, Decimal(1), Decimal(1), False
        )
    assert fit_to_cash_decimal(Decimal("100"), Decimal("10"), Decimal("1000.5"), model, False) == Decimal(
        "99"
    )
    with pytest.raises(ValueError, match="commission must be one of"):
        CostModel(commission="free")
    with pytest.raises(ValueError, match="must not be negative"):
        CostModel(slippage_bps=-1)
