"""Live bar feeds: the bar that just closed, for every symbol a timeframe trades.

One interface (:class:`marketdata.feeds.base.BarFeed`) for Twelve Data's batched REST
``time_series`` and the never-ending demo feed; the engine asks the feed after each bar
close that the market clock schedules (:mod:`marketdata.sessions`).
"""

from __future__ import annotations

from marketdata.feeds.base import BarFeed, FeedCapacityError, FeedError, FeedResult
from marketdata.feeds.demo import DemoFeed
from marketdata.feeds.twelvedata import TwelveDataFeed

__all__ = [
    "BarFeed",
    "DemoFeed",
    "FeedCapacityError",
    "FeedError",
    "FeedResult",
    "TwelveDataFeed",
    "get_feed",
]

FEEDS = {"twelvedata": TwelveDataFeed, "demo": DemoFeed, "sample": DemoFeed}


def get_feed(name: str) -> BarFeed:
    """The live feed called ``name`` (MARKETDATA_PROVIDER): the sample provider's live
    counterpart is the demo feed."""
    try:
        return FEEDS[name]()
    except KeyError:
        raise FeedError(f"no live feed for provider {name!r}; expected one of {', '.join(FEEDS)}") from None
