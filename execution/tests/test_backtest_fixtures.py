"""Hand-checked backtests: every fill, fee and P&L below is worked out by hand."""

import pytest

from execution.backtest import BacktestSettings, run_backtest
from execution.costs import CostModel
from strategies.tests.helpers import Scripted, scripted_bars


def test_long_trade_with_ibkr_commission_and_slippage():
    bars = scripted_bars(
        [
            (100, 101, 99, 100, "L"),  # signal: size at this close: 10000 * 0.5 / 100 = 50 shares
            (102, 104, 101, 103, ""),  # buy 50 at 102 * 1.001 = 102.102, fee max(50 * 0.005, 1) = 1.00
            (105, 106, 104, 105, "X"),  # exit signal
            (104, 105, 103, 104, ""),  # sell 50 at 104 * 0.999 = 103.896, fee 1.00
        ]
    )
    settings = BacktestSettings(
        initial_cash=10000, costs=CostModel("per_share", slippage_bps=10), position_fraction=0.5
    )
    result = run_backtest(Scripted(), {"T": bars}, settings)
    (trade,) = result.trades.to_dict("records")
    assert trade["quantity"] == 50
    assert trade["entry_price"] == pytest.approx(102.102)
    assert trade["exit_price"] == pytest.approx(103.896)
    assert trade["entry_fee"] == pytest.approx(1.00)
    assert trade["exit_fee"] == pytest.approx(1.00)
    assert trade["pnl"] == pytest.approx(50 * (103.896 - 102.102) - 2.00)  # 87.70
    assert trade["exit_reason"] == "signal"
    assert trade["entry_time"] == bars.index[1] and trade["exit_time"] == bars.index[3]
    # cash after the buy: 10000 - 5105.10 - 1 = 4893.90; marked at the closes
    assert result.equity.tolist() == pytest.approx([10000, 4893.90 + 50 * 103, 4893.90 + 50 * 105, 10087.70])
    assert result.metrics["final_equity"] == pytest.approx(10087.70)
    assert result.metrics["fees"] == pytest.approx(2.00)


def test_stop_first_gap_through_stop_and_take_profit():
    bars = scripted_bars(
        [
            (100, 100, 100, 100, "L"),  # 1000 * 1.0 / 100 = 10 shares
            (100, 103, 96, 101, ""),  # buy 10 at 100; stop 95, target 110; neither touched
            (99, 111, 94, 97, "L"),  # both touched: the stop counts first -> sell at 95, P&L -50
            (97, 98, 96, 96, ""),  # buy floor(950 / 97) = 9 at 97; stop 92.15, target 106.70
            (90, 92, 89, 91, "L"),  # gap through the stop: sell at the open 90, P&L 9 * -7 = -63
            (91, 101, 90, 100, ""),  # buy floor(887 / 91) = 9 at 91; target 100.10 hit: +81.90
        ]
    )
    settings = BacktestSettings(
        initial_cash=1000,
        costs=CostModel("none", slippage_bps=0),
        position_fraction=1.0,
        stop_type="percent",
        stop_value=5,
        target_type="percent",
        target_value=10,
    )
    result = run_backtest(Scripted(), {"T": bars}, settings)
    trades = result.trades
    assert trades["quantity"].tolist() == [10, 9, 9]
    assert trades["entry_price"].tolist() == pytest.approx([100, 97, 91])
    assert trades["exit_price"].tolist() == pytest.approx([95, 90, 100.10])
    assert trades["exit_reason"].tolist() == ["stop_loss", "stop_loss", "take_profit"]
    assert trades["pnl"].tolist() == pytest.approx([-50, -63, 81.90])
    assert trades["stop"].tolist() == pytest.approx([95, 92.15, 86.45])
    assert result.metrics["final_equity"] == pytest.approx(968.90)


def test_short_trade_with_percent_commission():
    bars = scripted_bars(
        [
            (100, 100, 100, 100, "S"),  # 10000 * 0.5 / 100 = 50 shares short
            (100, 101, 97, 98, "C"),  # sell 50 at 100, fee 0.1 % = 5.00; cash 14995; exit signal
            (97, 98, 96, 97, ""),  # buy back 50 at 97, fee 4.85; P&L 150 - 9.85 = 140.15
        ]
    )
    settings = BacktestSettings(
        initial_cash=10000,
        costs=CostModel("percent", percent=0.001, slippage_bps=0),
        position_fraction=0.5,
        allow_short=True,
    )
    result = run_backtest(Scripted(), {"T": bars}, settings)
    (trade,) = result.trades.to_dict("records")
    assert trade["direction"] == "short"
    assert trade["pnl"] == pytest.approx(140.15)
    assert result.equity.tolist() == pytest.approx([10000, 14995 - 50 * 98, 10140.15])


def test_shorts_ignored_unless_allowed_and_open_position_closed_at_the_end():
    bars = scripted_bars(
        [
            (100, 100, 100, 100, "S"),
            (100, 100, 100, 100, "L"),
            (100, 102, 99, 101, ""),
            (102, 103, 101, 102, ""),
        ]
    )
    settings = BacktestSettings(
        initial_cash=1000, costs=CostModel("none", slippage_bps=0), position_fraction=1.0
    )
    result = run_backtest(Scripted(), {"T": bars}, settings)
    (trade,) = result.trades.to_dict("records")
    assert trade["direction"] == "long" and trade["exit_reason"] == "end_of_data"
    assert trade["exit_price"] == 102 and trade["pnl"] == pytest.approx(20)


def test_max_open_positions_and_rejections_in_a_portfolio():
    a = scripted_bars([(10, 10, 10, 10, "L"), (10, 10, 10, 10, ""), (10, 10, 10, 10, "")])
    b = scripted_bars([(20, 20, 20, 20, "L"), (20, 20, 20, 20, ""), (20, 20, 20, 20, "")])
    settings = BacktestSettings(
        initial_cash=1000,
        costs=CostModel("none", slippage_bps=0),
        position_fraction=0.5,
        max_open_positions=1,
    )
    result = run_backtest(Scripted(), {"A": a, "B": b}, settings)
    assert result.trades["symbol"].tolist() == ["A"]
    assert result.rejected == 1 and result.metrics["rejected_signals"] == 1
    assert result.metrics["buy_and_hold"] == 0.0


def test_cooldown_rejects_reentry():
    bars = scripted_bars(
        [
            (10, 10, 10, 10, "L"),
            (10, 10, 10, 10, "X"),
            (10, 10, 10, 10, "L"),
            (10, 10, 10, 10, "L"),
            (10, 10, 10, 10, ""),
        ]
    )
    settings = BacktestSettings(
        initial_cash=1000, costs=CostModel("none", slippage_bps=0), position_fraction=0.5, cooldown_bars=2
    )
    result = run_backtest(Scripted(), {"T": bars}, settings)
    # exit fills on bar 2: entries signalled on bars 2 and 3 fall in the cooldown
    assert len(result.trades) == 1 and result.rejected == 2
