"""Bollinger Band mean reversion: fade the stretch, take profit at the mean."""

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


class BollingerReversion(Strategy):
    """Enter long when the close crosses below the lower band; exit when it crosses back
    above the middle band (the SMA). With shorting allowed: enter short when the close
    crosses above the upper band, exit when it crosses back below the middle band."""

    key = "bollinger_reversion"
    name = "Bollinger Band mean reversion"
    supports_short = True
    parameters = {
        "length": IntParam(20, 2, 1000, "band SMA length (bars)"),
        "std": FloatParam(2.0, 0.5, 5.0, "band width in standard deviations"),
    }

    def indicators(self):
        return [IndicatorSpec.of("bbands", length=self.p["length"], std=self.p["std"])]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        (spec,) = self.indicators()
        lower_c, mid_c, upper_c = spec.columns[:3]
        close, lower, mid, upper = frame["close"], frame[lower_c], frame[mid_c], frame[upper_c]
        entry_long, exit_long = crossed_below(close, lower), crossed_above(close, mid)
        entry_short, exit_short = crossed_above(close, upper), crossed_below(close, mid)
        label = f"BB({self.p['length']},{self.p['std']:g})"
        reasons = join_reasons(
            reason_where(
                entry_long, f"close {{c:.2f}} crossed below {label} lower {{b:.2f}}", c=close, b=lower
            ),
            reason_where(
                exit_long, f"close {{c:.2f}} crossed above {label} middle {{b:.2f}}", c=close, b=mid
            ),
            reason_where(
                entry_short, f"close {{c:.2f}} crossed above {label} upper {{b:.2f}}", c=close, b=upper
            ),
            reason_where(
                exit_short, f"close {{c:.2f}} crossed below {label} middle {{b:.2f}}", c=close, b=mid
            ),
        )
        return SignalFrame(entry_long, exit_long, entry_short, exit_short, reasons)
