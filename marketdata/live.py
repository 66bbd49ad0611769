"""Collecting the bar that just closed: ask the feed for what is missing, store it.

For one timeframe at one bar close, every symbol is fetched from the bar after its
newest stored bar through the bar that closed (one bar live; after an outage, all the
missed bars, in order), in as few feed requests as there are distinct gaps: live, one
batched request for the whole universe. What arrives is stored with the ordinary upsert,
so a bar the provider later revises is updated (and reported, for the journal); what
does not arrive is reported missing with the reason, for the caller to wait, back off or
mark stale. Nothing here trades or decides: the engine does.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from marketdata.bartime import bar_end
from marketdata.feeds.base import BarFeed
from marketdata.models import Stock
from marketdata.selectors import last_bar_time
from marketdata.services import IngestResult, ingest_bars
from marketdata.sessions import BarClose, next_bar_close
from marketdata.validation import BarDataError

logger = logging.getLogger("marketdata.live")

#: A symbol with no stored bars gets only the bar that closed: its history is fetch_bars' job.
MAX_GAP_BARS = 5000


@dataclass
class Collected:
    """What one collection brought for a timeframe at ``bar``."""

    timeframe: str
    bar: BarClose
    stored: dict[str, IngestResult] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    credits: int = 0

    @property
    def complete(self) -> list[str]:
        """Symbols whose bar at ``bar.opens_at`` is now stored."""
        return sorted(set(self.stored) - set(self.missing))

    @property
    def revised(self) -> list[str]:
        """Symbols for which the provider changed a bar already stored."""
        return sorted(s for s, r in self.stored.items() if r.updated)


def _first_wanted(stock: Stock, timeframe: str, bar: BarClose) -> pd.Timestamp:
    last = last_bar_time(stock, timeframe)
    if last is None:
        return bar.opens_at
    # The bar after the newest stored one, or the newest stored bar itself again when it
    # is the one that closed (asking again is how a revision arrives).
    following = next_bar_close(bar_end(last, timeframe), timeframe).opens_at
    return min(following, bar.opens_at)


def collect_closed_bars(feed: BarFeed, timeframe: str, stocks: Sequence[Stock], bar: BarClose) -> Collected:
    """Fetch and store every missing bar of ``timeframe`` for ``stocks`` through ``bar``."""
    collected = Collected(timeframe, bar)
    by_symbol = {stock.symbol: stock for stock in stocks}
    gaps: dict[pd.Timestamp, list[str]] = defaultdict(list)
    for symbol, stock in sorted(by_symbol.items()):
        gaps[_first_wanted(stock, timeframe, bar)].append(symbol)
    for first_open, symbols in sorted(gaps.items()):
        result = feed.closed_bars(timeframe, symbols, first_open, bar)
        collected.requests += 1
        collected.credits += result.credits
        collected.missing.update(result.missing)
        for symbol, frame in result.bars.items():
            if symbol not in by_symbol:
                continue
            try:
                collected.stored[symbol] = ingest_bars(by_symbol[symbol], timeframe, frame.tail(MAX_GAP_BARS))
            except BarDataError as exc:
                collected.missing[symbol] = f"bad bar from {feed.name}: {exc}"
                continue
            if frame.index[-1] < bar.opens_at:
                collected.missing[symbol] = f"newest {timeframe} bar from {feed.name} is {frame.index[-1]}"
    return collected
