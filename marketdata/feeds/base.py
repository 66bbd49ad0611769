"""The feed interface and what every feed shares: the bars it is asked for, the universe
it must cover, and a one-line error when it cannot."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from marketdata.bartime import expected_times
from marketdata.providers.base import ProviderError
from marketdata.sessions import BarClose


class FeedError(ProviderError):
    """The feed could not deliver; the message is one line and names what and where."""


class FeedCapacityError(FeedError):
    """The provider's plan cannot cover the universe: refuse to start, never trade part of it."""


@dataclass
class FeedResult:
    """What one request for closed bars brought: bars per symbol (oldest first, UTC open
    times, closed bars only) and, for the symbols that brought none, why."""

    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    credits: int = 0


def wanted_times(timeframe: str, first_open: pd.Timestamp, last: BarClose) -> pd.DatetimeIndex:
    """The bar keys from ``first_open`` through ``last`` on the session grid."""
    return expected_times(first_open, last.opens_at, timeframe)


class BarFeed(ABC):
    name = "feed"
    #: True when prices (and, with a simulated clock, time) are made up: the overview says so.
    simulated = False
    #: What the bars are adjusted for (Twelve Data's ``adjust``): recorded with what is stored.
    adjustment = "none"

    def check_capacity(self, universe: Mapping[str, Sequence[str]]) -> None:
        """Raise :class:`FeedCapacityError` when ``universe`` (timeframe -> symbols) cannot
        be fed at every bar close; free feeds accept anything."""
        return None

    @abstractmethod
    def closed_bars(
        self, timeframe: str, symbols: Sequence[str], first_open: pd.Timestamp, last: BarClose
    ) -> FeedResult:
        """Every closed bar of ``timeframe`` for ``symbols`` opening from ``first_open``
        through ``last`` (the bar that just closed): one bar live, a range to backfill."""
