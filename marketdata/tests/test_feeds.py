"""Live feeds: Twelve Data faked at the HTTP boundary in the real API's shape (single
and batched time_series, per-symbol and whole-request errors), and the demo feed."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import responses

from marketdata import clock
from marketdata.bartime import bar_end
from marketdata.feeds import DemoFeed, FeedCapacityError, FeedError, TwelveDataFeed, get_feed
from marketdata.feeds.demo import demo_bar
from marketdata.feeds.twelvedata import credits_needed
from marketdata.providers.limiter import CreditLimiter
from marketdata.providers.twelvedata import InvalidApiKey, TwelveDataClient
from marketdata.sessions import next_bar_close, previous_bar_close

BASE = "https://api.twelvedata.com"
KEY = "feed-key-456"


def meta(symbol: str) -> dict:
    return {
        "symbol": symbol,
        "interval": "1min",
        "exchange_timezone": "America/New_York",
        "type": "Common Stock",
    }


def minute_values(*stamps: str, price: float = 100.0) -> list[dict]:
    # Newest first, as the API sends them.
    return [
        {
            "datetime": s,
            "open": f"{price}",
            "high": f"{price + 1}",
            "low": f"{price - 1}",
            "close": f"{price}",
            "volume": "1200",
        }
        for s in reversed(stamps)
    ]


@pytest.fixture
def at_close():
    """The clock just after the 09:31 New York bar closed (14:32 UTC)."""
    with clock.using(clock.ManualClock(datetime(2026, 11, 30, 14, 32, 1, tzinfo=UTC))) as manual:
        yield manual


@pytest.fixture
def limiter():
    return CreditLimiter(per_minute=55, per_day=5000, sleep=lambda _s: None)


@pytest.fixture
def feed(limiter):
    client = TwelveDataClient(KEY, BASE, limiter=limiter, sleep=lambda _s: None, retries=1)
    return TwelveDataFeed(client, adjust="splits")


def last_bar():
    return previous_bar_close(clock.now(), "1min")


@responses.activate
def test_one_batched_request_for_all_symbols(feed, limiter, at_close):
    body = {
        "AAPL": {"meta": meta("AAPL"), "values": minute_values("2026-11-30 09:31:00"), "status": "ok"},
        "MSFT": {
            "meta": meta("MSFT"),
            "values": minute_values("2026-11-30 09:31:00", price=400),
            "status": "ok",
        },
    }
    responses.get(f"{BASE}/time_series", json=body)
    bar = last_bar()
    result = feed.closed_bars("1min", ["AAPL", "MSFT"], bar.opens_at, bar)
    assert len(responses.calls) == 1
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert (
        query["symbol"] == ["AAPL,MSFT"] and query["adjust"] == ["splits"] and query["interval"] == ["1min"]
    )
    assert result.credits == 2 and not result.missing
    assert list(result.bars["MSFT"].index) == [pd.Timestamp("2026-11-30 14:31", tz="UTC")]
    assert float(result.bars["MSFT"]["close"].iloc[0]) == 400.0


@responses.activate
def test_the_batch_costs_one_credit_per_symbol(feed, at_close):
    taken = []
    feed.client.limiter.acquire = lambda credits=1: taken.append(credits) or 0.0
    responses.get(
        f"{BASE}/time_series", json={"meta": meta("AAPL"), "values": minute_values("2026-11-30 09:31:00")}
    )
    bar = last_bar()
    feed.closed_bars("1min", ["AAPL"], bar.opens_at, bar)
    responses.get(f"{BASE}/time_series", json={s: {"meta": meta(s), "values": []} for s in "ABC"})
    feed.closed_bars("1min", ["A", "B", "C"], bar.opens_at, bar)
    assert taken == [1, 3]


@responses.activate
def test_a_symbol_in_error_is_missing_with_the_apis_reason(feed, at_close):
    body = {
        "AAPL": {"meta": meta("AAPL"), "values": minute_values("2026-11-30 09:31:00"), "status": "ok"},
        "NOPE": {"code": 400, "message": "**symbol** not found: NOPE", "status": "error"},
    }
    responses.get(f"{BASE}/time_series", json=body)
    bar = last_bar()
    result = feed.closed_bars("1min", ["AAPL", "NOPE"], bar.opens_at, bar)
    assert set(result.bars) == {"AAPL"} and "not found" in result.missing["NOPE"]


@responses.activate
def test_a_forming_bar_is_never_delivered(feed, at_close):
    # The API already shows 09:32 (still forming at 14:32:01 UTC): only 09:31 is closed.
    responses.get(
        f"{BASE}/time_series",
        json={"meta": meta("AAPL"), "values": minute_values("2026-11-30 09:31:00", "2026-11-30 09:32:00")},
    )
    bar = last_bar()
    result = feed.closed_bars("1min", ["AAPL"], pd.Timestamp("2026-11-30 14:30", tz="UTC"), bar)
    assert list(result.bars["AAPL"].index) == [pd.Timestamp("2026-11-30 14:31", tz="UTC")]


@responses.activate
def test_a_bad_key_stops_with_one_line_that_hides_the_key(feed, at_close):
    responses.get(
        f"{BASE}/time_series", json={"code": 401, "message": f"apikey {KEY} is invalid", "status": "error"}
    )
    bar = last_bar()
    with pytest.raises(InvalidApiKey) as excinfo:
        feed.closed_bars("1min", ["AAPL"], bar.opens_at, bar)
    assert KEY not in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_capacity_is_checked_against_the_plan(feed):
    universe = {"1min": [f"S{i}" for i in range(40)], "5min": [f"S{i}" for i in range(20)]}
    assert credits_needed(universe) == (60, 40 * 390 + 20 * 78)
    with pytest.raises(FeedCapacityError, match=r"needs 60 credits .* allows 55 a minute"):
        feed.check_capacity(universe)
    feed.client.limiter.per_day = 30  # 1 + 2 x 7 + 26 = 41 a session
    with pytest.raises(FeedCapacityError, match="a day"):
        feed.check_capacity({"1day": ["A"], "1h": ["B", "C"], "15min": ["D"]})
    feed.check_capacity({"1day": ["A"], "1h": ["B", "C"]})


def test_adjust_is_explicit_and_checked(limiter):
    client = TwelveDataClient(KEY, BASE, limiter=limiter)
    with pytest.raises(ValueError, match="adjust"):
        TwelveDataFeed(client, adjust="some")


def test_unknown_feed_names_the_choices():
    with pytest.raises(FeedError, match="twelvedata"):
        get_feed("bloomberg")
    assert isinstance(get_feed("sample"), DemoFeed)


class TestDemoFeed:
    def test_bars_are_valid_on_the_cent_and_reproducible(self):
        with clock.using(clock.ManualClock(datetime(2026, 11, 30, 21, 0, tzinfo=UTC))):
            bar = previous_bar_close(clock.now(), "5min")
            first = pd.Timestamp("2026-11-30 14:30", tz="UTC")
            frame = DemoFeed(seed=3).closed_bars("5min", ["AAPL", "MSFT"], first, bar).bars["AAPL"]
            again = DemoFeed(seed=3).closed_bars("5min", ["AAPL"], first, bar).bars["AAPL"]
        assert len(frame) == 78 and frame.equals(again)
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert ((frame[["open", "close"]] * 100).round(6) % 1 == 0).all().all()

    def test_a_bar_does_not_depend_on_what_was_asked_before(self):
        t = pd.Timestamp("2026-11-27 15:00", tz="UTC")
        assert demo_bar("AAPL", "1min", t) == demo_bar("AAPL", "1min", t)
        assert demo_bar("AAPL", "1min", t) != demo_bar("MSFT", "1min", t)
        # A 5-minute bar spans its five one-minute bars.
        minutes = [demo_bar("AAPL", "1min", t + pd.Timedelta(minutes=i)) for i in range(5)]
        five = demo_bar("AAPL", "5min", t)
        assert five["open"] == minutes[0]["open"] and five["close"] == minutes[-1]["close"]
        assert five["high"] == max(m["high"] for m in minutes)

    def test_any_session_of_the_calendar_has_bars(self):
        old = demo_bar("SPX", "1day", pd.Timestamp("1999-01-04", tz="UTC"))
        assert old["low"] <= old["open"] <= old["high"]

    def test_only_closed_bars_and_the_daily_bar_after_the_close(self):
        with clock.using(clock.ManualClock(datetime(2026, 11, 27, 17, 0, tzinfo=UTC))):
            upcoming = next_bar_close(clock.now(), "1day")  # the early close, 13:00 New York
            result = DemoFeed().closed_bars("1day", ["AAPL"], upcoming.opens_at, upcoming)
            assert "AAPL" in result.missing  # not closed yet
            clock.current().set(bar_end(upcoming.opens_at, "1day").to_pydatetime())
            result = DemoFeed().closed_bars("1day", ["AAPL"], upcoming.opens_at, upcoming)
        assert list(result.bars["AAPL"].index) == [pd.Timestamp("2026-11-27", tz="UTC")]
