"""User strategy modules in the registry."""

import pytest

from execution.backtest import BacktestSettings, run_backtest
from strategies import registry
from strategies.lookahead import check_causal
from strategies.tests.helpers import Scripted, random_bars


@pytest.fixture
def user_modules(settings):
    settings.STRATEGY_MODULES = ["strategies.tests.user_strategies"]
    registry.reload()
    yield
    settings.STRATEGY_MODULES = []
    registry.reload()


def test_user_strategy_module_is_found_and_usable(user_modules):
    cls = registry.get_strategy("close_above_sma")
    assert "close_above_sma" in registry.all_strategies() and "sma_crossover" in registry.all_strategies()
    assert check_causal(cls({"length": 5}), random_bars(60)) is None
    result = run_backtest(cls({"length": 5}), {"X": random_bars(200)}, BacktestSettings(initial_cash=10_000))
    assert result.metrics["trades"] > 0
    assert result.trades["entry_reason"].str.startswith("close ").all()


def test_duplicate_keys_are_an_error(settings):
    settings.STRATEGY_MODULES = ["strategies.library.sma_crossover"]  # the same class twice is fine
    registry.reload()
    assert registry.get_strategy("sma_crossover")
    settings.STRATEGY_MODULES = ["strategies.tests.test_registry"]
    registry.reload()
    with pytest.raises(ImportError, match="two strategies use the key 'sma_crossover'"):
        registry.all_strategies()
    settings.STRATEGY_MODULES = []
    registry.reload()
    with pytest.raises(registry.UnknownStrategy, match="available: bollinger_reversion"):
        registry.get_strategy("nope")


class ClashingKey(Scripted):
    key = "sma_crossover"
