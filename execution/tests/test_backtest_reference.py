"""The compiled backtester agrees with the per-bar reference simulator on random data."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.backtest import engine
from execution.backtest.settings import BacktestSettings
from execution.costs import CostModel
from execution.tests.backtest_reference import Reference


def random_market(seed: int, n: int, m: int, gaps: bool):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    open_ = np.vstack([np.full((1, m), 50.0), close[:-1]]) * np.exp(rng.normal(0, 0.01, (n, m)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n, m))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n, m))))
    atr = np.where(np.arange(n)[:, None] < 3, np.nan, np.abs(rng.normal(1.0, 0.3, (n, m))))
    sig = np.zeros((n, m), dtype=np.int8)
    for flag, p in (
        (engine.ENTRY_LONG, 0.15),
        (engine.EXIT_LONG, 0.15),
        (engine.ENTRY_SHORT, 0.1),
        (engine.EXIT_SHORT, 0.1),
    ):
        sig |= (rng.random((n, m)) < p) * flag
    sig = sig.astype(np.int8)
    if gaps and m > 1:
        missing = rng.random((n, m)) < 0.1
        missing[:, 0] = False  # one symbol trades every bar, as in a real union index
        for a in (open_, high, low, close, atr):
            a[missing] = np.nan
        sig[missing] = 0
    return open_, high, low, close, atr, sig


settings_strategy = st.builds(
    dict,
    initial_cash=st.sampled_from([1000.0, 10000.0, 100000.0]),
    costs=st.builds(
        CostModel,
        commission=st.sampled_from(["none", "per_share", "percent"]),
        percent=st.sampled_from([0.0, 0.001]),
        slippage_bps=st.sampled_from([0.0, 1.0, 25.0]),
    ),
    sizing_method=st.sampled_from(["fixed_fraction", "fixed_risk"]),
    position_fraction=st.sampled_from([0.1, 0.3, 1.0]),
    risk_per_trade=st.sampled_from([0.01, 0.05]),
    fractional_shares=st.booleans(),
    stop=st.sampled_from([("none", 0.0), ("percent", 3.0), ("atr", 1.5)]),
    target=st.sampled_from([("none", 0.0), ("percent", 4.0), ("atr", 2.0), ("r_multiple", 2.0)]),
    max_open_positions=st.integers(1, 3),
    allow_short=st.booleans(),
    cooldown_bars=st.sampled_from([0, 2]),
    guard=st.sampled_from([(0, 0, 0), (2, 10, 5)]),
    drawdown=st.sampled_from([(0.0, 0, 0), (0.05, 20, 5)]),
)


def build_settings(d: dict) -> BacktestSettings:
    d = dict(d)
    d["stop_type"], d["stop_value"] = d.pop("stop")
    d["target_type"], d["target_value"] = d.pop("target")
    if d["target_type"] == "r_multiple" and d["stop_type"] == "none":
        d["target_type"], d["target_value"] = "none", 0.0
    if d["sizing_method"] == "fixed_risk" and d["stop_type"] == "none":
        d["sizing_method"] = "fixed_fraction"
    d["stoploss_guard_limit"], d["stoploss_guard_window"], d["stoploss_guard_pause"] = d.pop("guard")
    d["max_drawdown"], d["max_drawdown_window"], d["max_drawdown_pause"] = d.pop("drawdown")
    return BacktestSettings(**d)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 120),
    m=st.integers(1, 3),
    gaps=st.booleans(),
    raw=settings_strategy,
)
def test_compiled_loop_matches_reference(seed, n, m, gaps, raw):
    s = build_settings(raw)
    arrays = random_market(seed, n, m, gaps)
    trades, equity, _, rejected, cash = engine.run_arrays(*arrays, s.as_array())

    ref = Reference(s, m)
    ref.run(*(a.tolist() for a in arrays))

    assert len(trades) == len(ref.trades)
    for row, expected in zip(trades, ref.trades, strict=True):
        assert int(row[engine.T_SYMBOL]) == expected.symbol
        assert int(row[engine.T_DIRECTION]) == expected.direction
        assert int(row[engine.T_SIGNAL_BAR]) == expected.signal_bar
        assert int(row[engine.T_ENTRY_BAR]) == expected.entry_bar
        assert int(row[engine.T_EXIT_BAR]) == expected.exit_bar
        assert row[engine.T_QUANTITY] == pytest.approx(expected.quantity, abs=1e-9)
        assert row[engine.T_ENTRY_PRICE] == pytest.approx(expected.entry_price, rel=1e-12)
        assert row[engine.T_EXIT_PRICE] == pytest.approx(expected.exit_price, rel=1e-12)
        assert row[engine.T_PNL] == pytest.approx(expected.pnl, abs=0.005)
        assert engine.REASONS[int(row[engine.T_REASON])] == expected.reason
    assert rejected == ref.rejected
    assert round(cash, 2) == round(ref.cash, 2)
    assert round(equity[-1], 2) == round(ref.equity[-1], 2)
    np.testing.assert_allclose(equity, ref.equity, atol=0.005)
