"""Parity: paper trading the sample through the engine gives the backtester's trades."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from execution.backtest.runner import run_backtest
from execution.backtest.settings import BacktestSettings
from execution.brokers.paper import PaperBroker
from execution.models import Fill, Order, Trade
from marketdata.selectors import bars_frame
from marketdata.services import load_sample
from strategies.models import Strategy
from strategies.services import build_strategy, create_strategy, set_active
from trading.engine import Engine, EngineOptions

START = datetime(2017, 1, 1, tzinfo=UTC)
END = datetime(2018, 3, 31, tzinfo=UTC)

CONFIGS = {
    "sma_percent_stop_r_target": {
        "strategy_class": "sma_crossover",
        "parameters": {"fast": 5, "slow": 20},
        "stop_loss_type": "percent",
        "stop_loss_value": 3,
        "take_profit_type": "r_multiple",
        "take_profit_value": 2,
        "position_fraction": "0.45",
    },
    "rsi_fixed_risk_atr_stop_cooldown": {
        "strategy_class": "rsi_mean_reversion",
        "parameters": {"length": 14, "oversold": 35, "overbought": 70, "exit_level": 50},
        "sizing_method": "fixed_risk",
        "risk_per_trade": "0.02",
        "stop_loss_type": "atr",
        "stop_loss_value": 2,
        "take_profit_type": "atr",
        "take_profit_value": 3,
        "risk_settings": {"cooldown_bars": 2},
    },
}


def backtest(strategy: Strategy, symbols: list[str]):
    bars = {s: bars_frame(s, "1day", end=END) for s in symbols}
    return run_backtest(build_strategy(strategy), bars, BacktestSettings.from_strategy(strategy), start=START)


@pytest.mark.django_db
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_engine_replay_reproduces_the_backtest(config):
    stocks = [stock for stock, _, _ in load_sample()]
    strategy = create_strategy(
        name=f"parity {config}", stocks=stocks, timeframe="1day", max_open_positions=2, **CONFIGS[config]
    )
    set_active(strategy, True)
    engine = Engine(
        EngineOptions(start=START, end=END, speed=None, heartbeat_interval=60), broker=PaperBroker()
    )
    assert engine.run() == 0

    result = backtest(strategy, sorted(s.symbol for s in stocks))
    expected = result.trades
    assert len(expected) >= 5, "the period should trade"
    live = {(t.stock.symbol, t.entry_time): t for t in Trade.objects.select_related("stock")}
    closed = expected[expected["exit_reason"] != "end_of_data"]
    still_open = expected[expected["exit_reason"] == "end_of_data"]
    assert len(live) == len(expected)
    for row in closed.itertuples():
        trade = live[(row.symbol, row.entry_time.to_pydatetime())]
        assert trade.status == "closed"
        assert trade.quantity == Decimal(repr(row.quantity))
        assert float(trade.entry_price) == pytest.approx(row.entry_price, abs=1e-5)
        assert float(trade.exit_price) == pytest.approx(row.exit_price, abs=1e-5)
        assert trade.exit_time == row.exit_time.to_pydatetime()
        assert trade.exit_reason == row.exit_reason
        # commissions are rounded to the cent on the paper broker
        assert float(trade.realized_pnl) == pytest.approx(row.pnl, abs=0.02)
    for row in still_open.itertuples():
        assert live[(row.symbol, row.entry_time.to_pydatetime())].status == "open"
    # every fill counted once, the paper books agree with the trades
    assert Fill.objects.count() == Order.objects.filter(filled_quantity__gt=0).count()
