"""SMA crossover: the classic trend follower."""

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


class SmaCrossover(Strategy):
    """Enter long when the fast SMA crosses above the slow SMA; exit when it crosses below.
    With shorting allowed, the mirror image opens and closes shorts."""

    key = "sma_crossover"
    name = "SMA crossover"
    supports_short = True
    parameters = {
        "fast": IntParam(10, 2, 500, "fast SMA length (bars)"),
        "slow": IntParam(30, 3, 2000, "slow SMA length (bars)"),
    }

    @classmethod
    def check_parameters(cls, params):
        if params["fast"] >= params["slow"]:
            return {"fast": f"must be less than slow ({params['slow']}), got {params['fast']}"}
        return {}

    def indicators(self):
        return [
            IndicatorSpec.of("sma", length=self.p["fast"]),
            IndicatorSpec.of("sma", length=self.p["slow"]),
        ]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        fast_spec, slow_spec = self.indicators()
        fast, slow = frame[fast_spec.key], frame[slow_spec.key]
        up, down = crossed_above(fast, slow), crossed_below(fast, slow)
        f, s = self.p["fast"], self.p["slow"]
        up_reason = reason_where(up, f"SMA({f}) {{a:.2f}} crossed above SMA({s}) {{b:.2f}}", a=fast, b=slow)
        down_reason = reason_where(
            down, f"SMA({f}) {{a:.2f}} crossed below SMA({s}) {{b:.2f}}", a=fast, b=slow
        )
        reasons = join_reasons(up_reason, down_reason)
        return SignalFrame(entry_long=up, exit_long=down, entry_short=down, exit_short=up, reasons=reasons)
