"""The moving-average crossover rule shared by the SMA and EMA crossover strategies."""

from typing import ClassVar

import pandas as pd

from marketdata.indicators import IndicatorSpec
from strategies.base import SignalFrame, Strategy, crossed_above, crossed_below, join_reasons, reason_where


class MovingAverageCrossover(Strategy):
    """Enter long when the fast average crosses above the slow one; exit when it crosses
    back below. With shorting allowed, the mirror image opens and closes shorts.

    Subclasses name the catalogue indicator (``average``) and their parameters; having no
    ``key``, this class is not registered itself.
    """

    average: ClassVar[str]
    supports_short = True

    @classmethod
    def check_parameters(cls, params):
        if params["fast"] >= params["slow"]:
            return {"fast": f"must be less than slow ({params['slow']}), got {params['fast']}"}
        return {}

    def indicators(self):
        return [
            IndicatorSpec.of(self.average, length=self.p["fast"]),
            IndicatorSpec.of(self.average, length=self.p["slow"]),
        ]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        fast_spec, slow_spec = self.indicators()
        fast, slow = frame[fast_spec.key], frame[slow_spec.key]
        up, down = crossed_above(fast, slow), crossed_below(fast, slow)
        label = self.average.upper()
        f, s = f"{label}({self.p['fast']})", f"{label}({self.p['slow']})"
        reasons = join_reasons(
            reason_where(up, f"{f} {{a:.2f}} crossed above {s} {{b:.2f}}", a=fast, b=slow),
            reason_where(down, f"{f} {{a:.2f}} crossed below {s} {{b:.2f}}", a=fast, b=slow),
        )
        return SignalFrame(entry_long=up, exit_long=down, entry_short=down, exit_short=up, reasons=reasons)
