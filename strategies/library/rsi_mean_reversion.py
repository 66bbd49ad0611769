"""RSI mean reversion: buy weakness, sell the bounce."""

import pandas as pd

from marketdata.indicators import IndicatorSpec
from strategies.base import (
    FloatParam,
    IntParam,
    SignalFrame,
    Strategy,
    crossed_above,
    crossed_below,
    join_reasons,
    reason_where,
)


class RsiMeanReversion(Strategy):
    """Enter long when RSI crosses below the oversold level; exit when it crosses back above
    the exit level. With shorting allowed: enter short when RSI crosses above the overbought
    level, exit when it crosses back below the exit level."""

    key = "rsi_mean_reversion"
    name = "RSI mean reversion"
    supports_short = True
    parameters = {
        "length": IntParam(14, 2, 200, "RSI length (bars)"),
        "oversold": FloatParam(30.0, 1, 99, "enter long when RSI crosses below this"),
        "overbought": FloatParam(70.0, 1, 99, "enter short when RSI crosses above this"),
        "exit_level": FloatParam(50.0, 1, 99, "exit when RSI crosses back through this"),
    }

    @classmethod
    def check_parameters(cls, params):
        errors = {}
        if not params["oversold"] < params["exit_level"]:
            errors["oversold"] = (
                f"must be below exit_level ({params['exit_level']}), got {params['oversold']}"
            )
        if not params["exit_level"] < params["overbought"]:
            errors["overbought"] = (
                f"must be above exit_level ({params['exit_level']}), got {params['overbought']}"
            )
        return errors

    def indicators(self):
        return [IndicatorSpec.of("rsi", length=self.p["length"])]

    @property
    def warmup(self) -> int:
        # Wilder's smoothing forgets its start slowly: after 25 lengths the start weighs < 1e-10.
        return 25 * self.p["length"] + 1

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        (spec,) = self.indicators()
        rsi = frame[spec.key]
        n, low, high, mid = self.p["length"], self.p["oversold"], self.p["overbought"], self.p["exit_level"]
        entry_long = crossed_below(rsi, pd.Series(low, index=rsi.index))
        exit_long = crossed_above(rsi, pd.Series(mid, index=rsi.index))
        entry_short = crossed_above(rsi, pd.Series(high, index=rsi.index))
        exit_short = crossed_below(rsi, pd.Series(mid, index=rsi.index))
        reasons = join_reasons(
            reason_where(entry_long, f"RSI({n}) {{r:.1f}} crossed below oversold {low:g}", r=rsi),
            reason_where(exit_long, f"RSI({n}) {{r:.1f}} crossed above exit level {mid:g}", r=rsi),
            reason_where(entry_short, f"RSI({n}) {{r:.1f}} crossed above overbought {high:g}", r=rsi),
            reason_where(exit_short, f"RSI({n}) {{r:.1f}} crossed below exit level {mid:g}", r=rsi),
        )
        return SignalFrame(entry_long, exit_long, entry_short, exit_short, reasons)
