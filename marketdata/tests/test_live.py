"""Collecting closed bars from a feed into the database, on a manual market clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from marketdata import clock
from marketdata.feeds import DemoFeed, FeedResult
from marketdata.feeds.base import BarFeed
from marketdata.live import collect_closed_bars
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame
from marketdata.services import ingest_bars
from marketdata.sessions import previous_bar_close

pytestmark = pytest.mark.django_db


class RecordingFeed(BarFeed):
    """The demo feed's bars, with the requests it was asked for."""

    name = "recording"

    def __init__(self, changes: dict | None = None):
        self.demo = DemoFeed(seed=1)
        self.calls: list[tuple[str, tuple[str, ...], pd.Timestamp]] = []
        self.changes = changes or {}

    def closed_bars(self, timeframe, symbols, first_open, last):
        self.calls.append((timeframe, tuple(symbols), first_open))
        result = self.demo.closed_bars(timeframe, symbols, first_open, last)
        for symbol, (column, value) in self.changes.items():
            if symbol in result.bars:
                result.bars[symbol] = result.bars[symbol].assign(**{column: value})
        return result


@pytest.fixture
def stocks():
    return [Stock.objects.create(symbol=s) for s in ("AAA", "BBB")]


def at(text: str):
    return clock.using(clock.ManualClock(datetime.fromisoformat(text).replace(tzinfo=UTC)))


def test_the_bar_that_closed_for_every_symbol_in_one_request(stocks):
    feed = RecordingFeed()
    with at("2026-11-30 14:35:01"):
        bar = previous_bar_close(clock.now(), "5min")
        collected = collect_closed_bars(feed, "5min", stocks, bar)
    assert feed.calls == [("5min", ("AAA", "BBB"), pd.Timestamp("2026-11-30 14:30", tz="UTC"))]
    assert collected.complete == ["AAA", "BBB"] and not collected.missing
    assert Bar.objects.filter(timeframe="5min").count() == 2


def test_after_an_outage_every_missed_bar_is_backfilled_in_order(stocks):
    feed = RecordingFeed()
    with at("2026-11-30 14:41:01"):
        collect_closed_bars(feed, "1min", stocks, previous_bar_close(clock.now(), "1min"))
    with at("2026-11-30 15:00:01"):  # the engine was away for 19 minutes
        collected = collect_closed_bars(feed, "1min", stocks, previous_bar_close(clock.now(), "1min"))
    assert feed.calls[-1] == ("1min", ("AAA", "BBB"), pd.Timestamp("2026-11-30 14:41", tz="UTC"))
    frame = bars_frame(stocks[0], "1min")
    expected = pd.date_range("2026-11-30 14:40", "2026-11-30 14:59", freq="1min", tz="UTC")
    assert list(frame.index) == list(expected)
    assert collected.stored["AAA"].inserted == 19 and collected.complete == ["AAA", "BBB"]


def test_different_gaps_are_different_requests(stocks):
    feed = RecordingFeed()
    with at("2026-11-30 14:33:01"):
        collect_closed_bars(feed, "1min", stocks[:1], previous_bar_close(clock.now(), "1min"))
    with at("2026-11-30 14:36:01"):
        collected = collect_closed_bars(feed, "1min", stocks, previous_bar_close(clock.now(), "1min"))
    assert [call[1] for call in feed.calls[1:]] == [("AAA",), ("BBB",)]  # the older gap first
    assert collected.requests == 2 and collected.complete == ["AAA", "BBB"]


def test_a_revised_bar_is_updated_and_reported(stocks):
    with at("2026-11-30 14:31:01"):
        bar = previous_bar_close(clock.now(), "1min")
        collect_closed_bars(RecordingFeed(), "1min", stocks, bar)
        collected = collect_closed_bars(RecordingFeed(changes={"BBB": ("volume", 7.0)}), "1min", stocks, bar)
    assert collected.revised == ["BBB"]
    assert Bar.objects.get(stock=stocks[1], timeframe="1min").volume == 7


def test_bad_bars_from_the_provider_are_missing_and_nothing_is_stored(stocks):
    ingest_bars(
        stocks[0],
        "1min",
        pd.DataFrame(
            {"open": [10.0], "high": [11.0], "low": [9.0], "close": [10.5], "volume": [100.0]},
            index=pd.DatetimeIndex([pd.Timestamp("2026-11-30 14:30", tz="UTC")], name="timestamp"),
        ),
    )
    with at("2026-11-30 14:32:01"):
        bar = previous_bar_close(clock.now(), "1min")
        collected = collect_closed_bars(RecordingFeed(changes={"AAA": ("low", 1e9)}), "1min", stocks, bar)
    assert "AAA" in collected.missing and "bad bar" in collected.missing["AAA"]
    assert collected.complete == ["BBB"]
    assert Bar.objects.filter(stock=stocks[0]).count() == 1  # the bad bar left nothing behind


def test_a_symbol_the_feed_has_no_bar_for_is_missing(stocks):
    class Silent(BarFeed):
        def closed_bars(self, timeframe, symbols, first_open, last):
            return FeedResult(missing={s: "provider down" for s in symbols})

    with at("2026-11-30 14:31:01"):
        collected = collect_closed_bars(Silent(), "1min", stocks, previous_bar_close(clock.now(), "1min"))
    assert collected.missing == {"AAA": "provider down", "BBB": "provider down"} and not collected.complete
