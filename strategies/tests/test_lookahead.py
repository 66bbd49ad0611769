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


def test_reasons_join_many_categories_and_clashes():
    import numpy as np

    from strategies.base import join_reasons, reason_entries, sparse_reasons

    index = pd.RangeIndex(1000)
    a = sparse_reasons(index, np.arange(0, 600, 3), [f"a{i}" for i in range(200)])  # int16 codes
    b = sparse_reasons(index, np.arange(1, 600, 3), [f"b{i}" for i in range(200)])
    joined = join_reasons(a, b)
    assert joined.iat[3] == "a1" and joined.iat[4] == "b1" and joined.iat[598] == "b199"
    clash = join_reasons(a, sparse_reasons(index, np.array([3]), ["c"]), pd.Series([""] * 1000))
    assert clash.iat[3] == "a1; c" and clash.iat[0] == "a0"
    rows, texts = reason_entries(pd.Series(["", "x", None, "y"]))
    assert rows.tolist() == [1, 3] and texts == ["x", "y"]
    duplicated = sparse_reasons(pd.RangeIndex(4), np.array([0, 2, 3]), ["same", "", "same"])
    assert duplicated.tolist() == ["same", "", "", "same"]


def test_crossings_match_the_pandas_definition():
    import numpy as np

    from strategies.base import crossed_above, crossed_below

    a = pd.Series([1.0, 2.0, np.nan, 3.0, 1.0, 2.0, 2.0, 3.0])
    b = pd.Series([2.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    assert crossed_above(a, b).tolist() == ((a > b) & (a.shift(1) <= b.shift(1))).tolist()
    assert crossed_below(a, b).tolist() == ((a < b) & (a.shift(1) >= b.shift(1))).tolist()
    assert crossed_above(a, 1.5).tolist() == [False, True, False, False, False, True, False, False]
    with pytest.raises(ValueError, match="identically-labeled"):  # as pandas: no silent alignment
        crossed_below(a, pd.Series([2.0, 1.0, 1.0], index=[1, 2, 3]))
