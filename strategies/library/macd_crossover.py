"""MACD signal-line crossover: momentum turning."""

import pandas as pd

from marketdata.indicators import IndicatorSpec
from strategies.base import (
    IntParam,
    SignalFrame,
    Strategy,
    crossed_above,
    crossed_below,
    join_reasons,
    reason_where,
)


class MacdCrossover(Strategy):
    """Enter long when the MACD line crosses above its signal line; exit when it crosses
    back below. With shorting allowed, the mirror image opens and closes shorts."""

    key = "macd_crossover"
    name = "MACD signal-line crossover"
    supports_short = True
    parameters = {
        "fast": IntParam(12, 2, 500, "fast EMA length (bars)"),
        "slow": IntParam(26, 3, 1000, "slow EMA length (bars)"),
        "signal": IntParam(9, 2, 500, "signal line EMA length (bars)"),
    }

    @classmethod
    def check_parameters(cls, params):
        if params["fast"] >= params["slow"]:
            return {"fast": f"must be less than slow ({params['slow']}), got {params['fast']}"}
        return {}

    def indicators(self):
        return [IndicatorSpec.of("macd", fast=self.p["fast"], slow=self.p["slow"], signal=self.p["signal"])]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        (spec,) = self.indicators()
        macd_column, _, signal_column = spec.columns
        macd, signal = frame[macd_column], frame[signal_column]
        up, down = crossed_above(macd, signal), crossed_below(macd, signal)
        label = f"MACD({self.p['fast']},{self.p['slow']},{self.p['signal']})"
        reasons = join_reasons(
            reason_where(up, f"{label} {{m:.3f}} crossed above signal {{s:.3f}}", m=macd, s=signal),
            reason_where(down, f"{label} {{m:.3f}} crossed below signal {{s:.3f}}", m=macd, s=signal),
        )
        return SignalFrame(entry_long=up, exit_long=down, entry_short=down, exit_short=up, reasons=reasons)
