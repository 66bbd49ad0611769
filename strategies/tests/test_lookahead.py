"""Every built-in strategy passes both lookahead checks; a peeking strategy fails them."""

import pandas as pd
import pytest

from strategies.base import SignalFrame, Strategy
from strategies.lookahead import check_causal, check_strategy, check_warmup
from strategies.registry import all_strategies
from strategies.tests.helpers import random_bars

BARS = random_bars(900, seed=7)


@pytest.mark.parametrize("key", sorted(all_strategies()))
def test_builtin_is_causal_and_warms_up(key):
    strategy = all_strategies()[key](allow_short=True)
    assert check_causal(strategy, BARS.iloc[:220]) is None
    assert check_warmup(strategy, BARS) is None
    signals = strategy.run(BARS)
    assert signals[["entry_long", "exit_long"]].to_numpy().any(), "the fixture should produce signals"


class Peeking(Strategy):
    key = "peeking"
    name = "Peeks at tomorrow"
    parameters = {}

    def indicators(self):
        return []

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        up = frame["close"].shift(-1) > frame["close"]
        empty = SignalFrame.empty(frame.index)
        return SignalFrame(up, ~up, empty.entry_short, empty.exit_short, empty.reasons)


class StartDependent(Peeking):
    key = "start_dependent"

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        up = frame["close"] > frame["close"].iloc[0]
        empty = SignalFrame.empty(frame.index)
        return SignalFrame(up, ~up, empty.entry_short, empty.exit_short, empty.reasons)


def test_peeking_strategy_fails_with_the_first_bar():
    difference = check_causal(Peeking(), BARS.iloc[:50])
    assert difference is not None and difference.check == "causality"
    assert "first difference at bar" in str(difference)


def test_start_dependent_strategy_fails_the_warmup_check():
    difference = check_warmup(StartDependent(), BARS.iloc[:200])
    assert difference is not None and difference.check.startswith("warm-up")
    assert len(check_strategy(StartDependent(), BARS.iloc[:60])) >= 1
