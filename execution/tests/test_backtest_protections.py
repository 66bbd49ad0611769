"""Protections in the backtester, checked by hand."""

import pytest

from execution.backtest import BacktestSettings, run_backtest
from execution.costs import CostModel
from strategies.tests.helpers import Scripted, scripted_bars

FLAT = (10, 10, 10, 10)
NO_COSTS = CostModel("none", slippage_bps=0)


def test_stoploss_guard_pauses_entries():
    # Two stop-losses within 5 bars pause every entry for 3 bars from the second stop.
    rows = [
        (*FLAT, "L"),  # 0: signal
        (10, 10, 10, 10, ""),  # 1: buy at 10, stop 9.5
        (10, 10, 9, 9, "L"),  # 2: stopped at 9.5 (first stop); signal again
        (9, 9, 9, 9, ""),  # 3: buy at 9, stop 8.55
        (9, 9, 8, 8, "L"),  # 4: stopped (second stop within 5 bars): locked until bar 7
        (8, 8, 8, 8, "L"),  # 5: rejected
        (8, 8, 8, 8, "L"),  # 6: rejected
        (8, 8, 8, 8, "L"),  # 7: accepted
        (8, 8, 8, 8, ""),  # 8: buy
    ]
    settings = BacktestSettings(
        initial_cash=1000,
        costs=NO_COSTS,
        position_fraction=0.5,
        stop_type="percent",
        stop_value=5,
        stoploss_guard_limit=2,
        stoploss_guard_window=5,
        stoploss_guard_pause=3,
    )
    result = run_backtest(Scripted(), {"T": scripted_bars(rows)}, settings)
    assert result.trades["exit_reason"].tolist() == ["stop_loss", "stop_loss", "end_of_data"]
    assert result.rejected == 3  # bar 4's own signal, 5 and 6
    assert result.trades["entry_time"].iloc[-1] == scripted_bars(rows).index[8]


def test_max_drawdown_pauses_entries():
    rows = [
        (*FLAT, "L"),
        (10, 10, 10, 10, ""),  # buy 100 at 10 with all 1000
        (10, 10, 8, 8, "X"),  # equity 800: 20 % below the 3-bar peak -> locked until bar 2 + 1
        (8, 8, 8, 8, "L"),  # sold at 8; still 20 % below bar 1's 1000 -> locked until 4: rejected
        (8, 8, 8, 8, "L"),  # bar 1 has left the 3-bar window: no drawdown, accepted
        (8, 8, 8, 8, ""),
    ]
    settings = BacktestSettings(
        initial_cash=1000,
        costs=NO_COSTS,
        position_fraction=1.0,
        max_drawdown=0.15,
        max_drawdown_window=3,
        max_drawdown_pause=1,
    )
    result = run_backtest(Scripted(), {"T": scripted_bars(rows)}, settings)
    assert result.rejected == 1
    assert len(result.trades) == 2 and result.trades["pnl"].iloc[0] == pytest.approx(-200)
