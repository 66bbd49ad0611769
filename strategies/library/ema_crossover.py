"""EMA crossover: the SMA crossover's faster-reacting sibling."""

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


class EmaCrossover(Strategy):
    """Enter long when the fast EMA crosses above the slow EMA; exit when it crosses back
    below. With shorting allowed, the mirror image opens and closes shorts."""

    key = "ema_crossover"
    name = "EMA crossover"
    supports_short = True
    parameters = {
        "fast": IntParam(12, 2, 500, "fast EMA length (bars)"),
        "slow": IntParam(26, 3, 2000, "slow EMA length (bars)"),
    }

    @classmethod
    def check_parameters(cls, params):
        if params["fast"] >= params["slow"]:
            return {"fast": f"must be less than slow ({params['slow']}), got {params['fast']}"}
        return {}

    def indicators(self):
        return [
            IndicatorSpec.of("ema", length=self.p["fast"]),
            IndicatorSpec.of("ema", length=self.p["slow"]),
        ]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        fast_spec, slow_spec = self.indicators()
        fast, slow = frame[fast_spec.key], frame[slow_spec.key]
        up, down = crossed_above(fast, slow), crossed_below(fast, slow)
        f, s = self.p["fast"], self.p["slow"]
        reasons = join_reasons(
            reason_where(up, f"EMA({f}) {{a:.2f}} crossed above EMA({s}) {{b:.2f}}", a=fast, b=slow),
            reason_where(down, f"EMA({f}) {{a:.2f}} crossed below EMA({s}) {{b:.2f}}", a=fast, b=slow),
        )
        return SignalFrame(entry_long=up, exit_long=down, entry_short=down, exit_short=up, reasons=reasons)
