"""Every metric against a value worked out by hand on a small equity curve and trade list."""

import math

import numpy as np
import pytest

from execution.backtest import engine
from execution.backtest.metrics import compute_metrics, longest_run, periods_per_year


def trades_with(pnls, notional=100.0):
    rows = np.zeros((len(pnls), engine.T_SIZE))
    rows[:, engine.T_QUANTITY] = 1.0
    rows[:, engine.T_ENTRY_PRICE] = notional
    rows[:, engine.T_PNL] = pnls
    rows[:, engine.T_ENTRY_FEE] = 0.5
    rows[:, engine.T_EXIT_FEE] = 0.25
    return rows


def test_metrics_by_hand():
    # 100 -> 110 -> 99 -> 99 -> 108.9: returns +10 %, -10 %, 0 %, +10 %
    equity = np.array([110.0, 99.0, 99.0, 108.9])
    trades = trades_with([10.0, -5.0, 20.0, -5.0, -5.0])
    in_market = np.array([True, True, False, False])
    closes = np.array([[50.0, np.nan], [55.0, 20.0], [60.0, 30.0], [np.nan, 10.0]])
    m = compute_metrics(equity, trades, in_market, closes, initial_cash=100.0, periods=4, rejected=3)

    assert m["total_return"] == pytest.approx(0.089)
    assert m["cagr"] == pytest.approx(0.089)  # 4 bars at 4 a year: one year
    std = math.sqrt((0.075**2 + 0.125**2 + 0.025**2 + 0.075**2) / 3)  # sample std of returns
    assert m["volatility"] == pytest.approx(std * 2)
    assert m["sharpe"] == pytest.approx(0.025 / std * 2)
    assert m["sortino"] == pytest.approx(0.025 / math.sqrt(0.01 / 4) * 2)  # = 1.0
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["max_drawdown_duration"] == 3
    assert m["calmar"] == pytest.approx(0.89)
    assert m["trades"] == 5
    assert m["win_rate"] == pytest.approx(0.4)
    assert m["profit_factor"] == pytest.approx(2.0)
    assert m["expectancy"] == pytest.approx(3.0)
    assert m["expectancy_pct"] == pytest.approx(0.03)
    assert m["avg_win"] == pytest.approx(15.0)
    assert m["avg_loss"] == pytest.approx(-5.0)
    assert m["best_trade"] == pytest.approx(0.2)
    assert m["worst_trade"] == pytest.approx(-0.05)
    assert m["sqn"] == pytest.approx(math.sqrt(5) * 3 / math.sqrt(530 / 4))
    assert m["longest_win_streak"] == 1
    assert m["longest_loss_streak"] == 2
    assert m["fees"] == pytest.approx(3.75)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["rejected_signals"] == 3
    assert m["buy_and_hold"] == pytest.approx((0.2 + -0.5) / 2)


def test_undefined_metrics_are_none():
    m = compute_metrics(
        np.array([100.0, 100.0]),
        trades_with([]),
        np.zeros(2, bool),
        np.array([100.0, 100.0]),
        initial_cash=100.0,
        periods=252,
    )
    assert m["trades"] == 0
    for key in ("sharpe", "sortino", "calmar", "win_rate", "profit_factor", "expectancy", "sqn", "avg_win"):
        assert m[key] is None
    assert m["max_drawdown"] == 0 and m["max_drawdown_duration"] == 0


def test_helpers():
    assert longest_run(np.array([True, False, True, True, False])) == 2
    assert longest_run(np.array([False])) == 0
    assert periods_per_year("1day") == 252 and periods_per_year("1min") == 252 * 390
    with pytest.raises(ValueError, match="unknown timeframe"):
        periods_per_year("3sec")
