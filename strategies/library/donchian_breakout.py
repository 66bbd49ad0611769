"""Donchian channel breakout: the Turtle trader's entry."""

import pandas as pd

from marketdata.indicators import IndicatorSpec
from strategies.base import IntParam, SignalFrame, Strategy, join_reasons, reason_where


def _first(condition: pd.Series) -> pd.Series:
    """True on the first bar of each run of ``condition``."""
    return condition & ~condition.shift(1, fill_value=False)


class DonchianBreakout(Strategy):
    """Enter long when the close breaks above the highest high of the *previous*
    ``entry_length`` bars; exit when it breaks below the lowest low of the previous
    ``exit_length`` bars. With shorting allowed, the mirror image: enter short below the
    previous ``entry_length``-bar low, exit above the previous ``exit_length``-bar high.

    The channel is shifted by one bar: the bar being tested is never part of its own
    channel (a close can never exceed a high that includes it), which keeps it causal.
    Each signal marks the first bar of a breakout."""

    key = "donchian_breakout"
    name = "Donchian channel breakout"
    supports_short = True
    parameters = {
        "entry_length": IntParam(20, 2, 1000, "breakout channel length (bars)"),
        "exit_length": IntParam(10, 1, 1000, "exit channel length (bars)"),
    }

    @classmethod
    def check_parameters(cls, params):
        if params["exit_length"] > params["entry_length"]:
            return {
                "exit_length": f"must not exceed entry_length ({params['entry_length']}), "
                f"got {params['exit_length']}"
            }
        return {}

    def indicators(self):
        n, x = self.p["entry_length"], self.p["exit_length"]
        return [
            IndicatorSpec.of("donchian", lower_length=n, upper_length=n),
            IndicatorSpec.of("donchian", lower_length=x, upper_length=x),
        ]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        entry_spec, exit_spec = self.indicators()
        close = frame["close"]
        # channels of the bars *before* this one
        entry_low = frame[entry_spec.columns[0]].shift(1)
        entry_high = frame[entry_spec.columns[2]].shift(1)
        exit_low = frame[exit_spec.columns[0]].shift(1)
        exit_high = frame[exit_spec.columns[2]].shift(1)
        entry_long, exit_long = _first(close > entry_high), _first(close < exit_low)
        entry_short, exit_short = _first(close < entry_low), _first(close > exit_high)
        n, x = self.p["entry_length"], self.p["exit_length"]
        reasons = join_reasons(
            reason_where(
                entry_long, f"close {{c:.2f}} broke above the {n}-bar high {{h:.2f}}", c=close, h=entry_high
            ),
            reason_where(
                exit_long, f"close {{c:.2f}} broke below the {x}-bar low {{h:.2f}}", c=close, h=exit_low
            ),
            reason_where(
                entry_short, f"close {{c:.2f}} broke below the {n}-bar low {{h:.2f}}", c=close, h=entry_low
            ),
            reason_where(
                exit_short, f"close {{c:.2f}} broke above the {x}-bar high {{h:.2f}}", c=close, h=exit_high
            ),
        )
        return SignalFrame(entry_long, exit_long, entry_short, exit_short, reasons)
