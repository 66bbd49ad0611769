"""Data checks on stored bars: calendar gaps, duplicates, order, zero volume, OHLC anomalies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marketdata.bartime import expected_times


@dataclass
class BarReport:
    symbol: str
    timeframe: str
    bars: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    missing: list[pd.Timestamp] = field(default_factory=list)  # sessions/bars the calendar expects
    unexpected: list[pd.Timestamp] = field(default_factory=list)  # bars outside the calendar
    duplicates: list[pd.Timestamp] = field(default_factory=list)
    out_of_order: list[pd.Timestamp] = field(default_factory=list)
    zero_volume: list[pd.Timestamp] = field(default_factory=list)
    anomalies: list[tuple[pd.Timestamp, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.out_of_order or self.anomalies or self.unexpected)

    def lines(self, limit: int = 5) -> list[str]:
        out = [f"{self.symbol} {self.timeframe}: {self.bars} bars {self.first} .. {self.last}"]

        def show(title: str, items: list) -> None:
            if items:
                sample = ", ".join(str(i) for i in items[:limit])
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                out.append(f"  {title}: {len(items)}: {sample}{more}")

        show("missing (calendar gaps)", self.missing)
        show("outside the calendar", self.unexpected)
        show("duplicates", self.duplicates)
        show("out of order", self.out_of_order)
        show("zero volume", self.zero_volume)
        show("OHLC anomalies", [f"{t} {why}" for t, why in self.anomalies])
        if self.ok:
            out.append("  ok" + (" (zero-volume bars noted)" if self.zero_volume else ""))
        return out


def check_frame(frame: pd.DataFrame, symbol: str, timeframe: str) -> BarReport:
    """Check bars in storage order (the index as read, not re-sorted)."""
    report = BarReport(symbol, timeframe, bars=len(frame))
    if frame.empty:
        return report
    index = frame.index
    report.first, report.last = index.min(), index.max()
    report.duplicates = list(index[index.duplicated()])
    order = np.flatnonzero(np.diff(index.asi8) < 0) + 1
    report.out_of_order = list(index[order])
    report.zero_volume = list(index[frame["volume"].to_numpy() == 0])
    o, h, lo, c = (frame[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    checks = [
        (h < np.maximum(o, c), "high below max(open, close)"),
        (lo > np.minimum(o, c), "low above min(open, close)"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "non-positive price"),
    ]
    for mask, why in checks:
        report.anomalies.extend((index[i], why) for i in np.flatnonzero(mask))
    expected = expected_times(report.first, report.last, timeframe)
    if len(expected):
        present = pd.DatetimeIndex(index.unique()).as_unit("us")
        report.missing = list(expected.difference(present))
        report.unexpected = list(present.difference(expected))
    return report
