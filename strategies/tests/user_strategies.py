"""A user strategy module, as STRATEGY_MODULES would name it (used by the registry test)."""

import pandas as pd

from marketdata.indicators import IndicatorSpec
from strategies.base import IntParam, SignalFrame, Strategy, reason_where


class CloseAboveSma(Strategy):
    """Long while the close is above its SMA: enter on the first close above, exit below."""

    key = "close_above_sma"
    name = "Close above SMA"
    parameters = {"length": IntParam(20, 2, 500)}

    def indicators(self):
        return [IndicatorSpec.of("sma", length=self.p["length"])]

    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        sma = frame[self.indicators()[0].key]
        above = frame["close"] > sma
        entry = above & ~above.shift(1, fill_value=False)
        exit_ = ~above & above.shift(1, fill_value=False)
        empty = SignalFrame.empty(frame.index)
        reasons = reason_where(entry, "close {c:.2f} above SMA {s:.2f}", c=frame["close"], s=sma)
        return SignalFrame(entry, exit_, empty.entry_short, empty.exit_short, reasons)
