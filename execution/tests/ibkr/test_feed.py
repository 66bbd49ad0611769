"""The IB bar feed on the fake IB's historical bars, on a manual market clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from execution.brokers.ibkr.feed import IBBarFeed
from execution.brokers.ibkr.pacing import Pacing, PacingRefused
from execution.tests.fake_ib_bars import FakeIBWithBars
from marketdata import clock
from marketdata.feeds.base import FeedCapacityError, FeedError
from marketdata.live import collect_closed_bars
from marketdata.models import Bar, Stock
from marketdata.sessions import BarClose, previous_bar_close

UTC_TS = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def manual():
    with clock.using(clock.ManualClock(utc("2026-11-30 14:30:20"))) as manual_clock:
        yield manual_clock


@pytest.fixture
def fake() -> FakeIBWithBars:
    ib = FakeIBWithBars()
    for symbol, con_id in (("AAPL", 265598), ("MSFT", 272093), ("NVDA", 4815747)):
        ib.add_contract(symbol, "NASDAQ", con_id)
    return ib


def make_feed(fake: FakeIBWithBars, **kwargs) -> IBBarFeed:
    options = {"settle": 0.0, "reconnect_delays": (0,)}
    options.update(kwargs)
    return IBBarFeed("127.0.0.1", 4002, 18, ib=fake, **options)


def last_closed(timeframe: str) -> BarClose:
    bar = previous_bar_close(clock.now(), timeframe)
    assert bar is not None
    return bar


def ask(feed: IBBarFeed, timeframe: str, symbols: list[str], first_open: str | None = None):
    bar = last_closed(timeframe)
    first = UTC_TS(first_open) if first_open else bar.opens_at
    return feed.closed_bars(timeframe, symbols, first, bar)


def test_the_forming_bar_is_never_delivered_and_a_closed_one_is_delivered_once(fake, manual):
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-30 14:30"), 100.0, 100.5, 99.8, 100.2, 900.0)])
    feed = make_feed(fake)
    manual.set(utc("2026-11-30 14:31:01"))  # the 14:30 bar's period is over, IB has not moved on
    result = ask(feed, "1min", ["AAPL"])
    assert result.bars == {} and "has not completed" in result.missing["AAPL"]
    (request,) = fake.history_requests
    assert request["keepUpToDate"] and request["endDateTime"] == "" and request["barSizeSetting"] == "1 min"
    assert (request["whatToShow"], request["useRTH"], request["formatDate"]) == ("TRADES", True, 2)

    fake.tick("AAPL", "1 min", 101.0, volume=50)  # a late trade in the 14:30 bar
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:31"), 100.9)
    result = ask(feed, "1min", ["AAPL"])
    frame = result.bars["AAPL"]
    assert list(frame.index) == [UTC_TS("2026-11-30 14:30")] and not result.missing
    assert frame.iloc[0].tolist() == [100.0, 101.0, 99.8, 101.0, 950.0]
    assert frame.index.name == "timestamp" and str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert (frame.dtypes == "float64").all()

    fake.tick("AAPL", "1 min", 100.7)  # 14:31 forming: not delivered
    manual.set(utc("2026-11-30 14:32:00.5"))
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:32"), 100.6)
    result = ask(feed, "1min", ["AAPL"])
    assert list(result.bars["AAPL"].index) == [UTC_TS("2026-11-30 14:31")]
    assert result.bars["AAPL"].iloc[0]["low"] == 100.7
    assert fake.calls["reqHistoricalData"] == 1  # one subscription, no polling


def test_the_last_bar_of_an_early_close_completes_at_the_close(fake, manual):
    manual.set(utc("2026-11-27 17:58:30"))  # the day after Thanksgiving: closes 13:00 New York
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-27 17:58"), 50.0, 50.0, 50.0, 50.0, 10.0)])
    fake.add_bars("AAPL", "1 day", [(date(2026, 11, 27), 49.0, 51.0, 48.0, 50.0, 10.0)])
    feed = make_feed(fake)
    assert ask(feed, "1min", ["AAPL"]).bars == {}  # subscribes; 17:58 is forming
    fake.push_bar("AAPL", "1 min", utc("2026-11-27 17:59"), 50.5)
    manual.set(utc("2026-11-27 17:59:59"))
    assert "AAPL" in ask(feed, "1min", ["AAPL"]).bars  # 17:58 closed by the next bar
    day = feed.closed_bars(
        "1day",
        ["AAPL"],
        UTC_TS("2026-11-27"),
        BarClose("1day", UTC_TS("2026-11-27"), UTC_TS("2026-11-27 18:00")),
    )
    assert day.bars == {}  # the session is still open

    manual.set(utc("2026-11-27 18:00:00"))  # the close: no next bar comes, the clock decides
    last = last_closed("1min")
    assert last.opens_at == UTC_TS("2026-11-27 17:59") and last.closes_at == UTC_TS("2026-11-27 18:00")
    assert list(feed.closed_bars("1min", ["AAPL"], last.opens_at, last).bars["AAPL"].index) == [last.opens_at]
    daily = ask(feed, "1day", ["AAPL"]).bars["AAPL"]
    assert list(daily.index) == [UTC_TS("2026-11-27")] and daily.iloc[0]["close"] == 50.0
    assert {r["barSizeSetting"] for r in fake.history_requests} == {"1 min", "1 day"}


def test_an_older_range_is_backfilled_with_one_plain_request(fake, manual):
    friday = [
        (utc(f"2026-11-27 17:{m}"), 40.0 + i, 41.0 + i, 39.0 + i, 40.5 + i, 5.0)
        for i, m in enumerate((57, 58, 59))
    ]
    fake.add_bars("AAPL", "1 min", friday)
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-30 14:30"), 60.0, 60.0, 60.0, 60.0, 1.0)])
    manual.set(utc("2026-11-30 14:31:00"))
    fake_next = ("AAPL", "1 min", utc("2026-11-30 14:31"), 61.0)
    feed = make_feed(fake)
    ask(feed, "1min", ["AAPL"])  # subscribed from two days back: Friday is not in it
    fake.push_bar(*fake_next)

    result = ask(feed, "1min", ["AAPL"], first_open="2026-11-27 17:58")
    expected = [UTC_TS("2026-11-27 17:58"), UTC_TS("2026-11-27 17:59"), UTC_TS("2026-11-30 14:30")]
    assert list(result.bars["AAPL"].index) == expected
    backfill = fake.history_requests[-1]
    assert not backfill["keepUpToDate"] and backfill["endDateTime"] == utc("2026-11-30 14:30")
    assert backfill["durationStr"] == "3 D"
    ask(feed, "1min", ["AAPL"], first_open="2026-11-27 17:58")
    assert len(fake.history_requests) == 2  # that range is held now: not asked again


def test_pacing_waits_on_the_market_clock_or_refuses(manual):
    pacing = Pacing(max_wait=15)
    for i in range(60):
        pacing.admit_request(("bars", i), "a request")
        manual.advance(0.1)  # 10 a second: within the 50 messages a second
    before = clock.now()
    with pytest.raises(PacingRefused, match="60 of 60 historical-data requests"):
        pacing.admit_request(("bars", 60), "the 61st")
    assert clock.now() == before  # refused without waiting

    patient = Pacing(max_wait=600)
    start = clock.now()
    for i in range(60):
        patient.admit_request(("bars", i), "a request")
        manual.advance(0.1)
    patient.admit_request(("bars", 60), "the 61st")
    assert clock.now() == start + timedelta(minutes=10)  # waited for the oldest to age out

    manual.advance(1)
    patient.admit_request(("same",), "a request")
    manual.advance(5)
    before = clock.now()
    patient.admit_request(("same",), "the same again")
    assert clock.now() - before == timedelta(seconds=10)  # 15 s after the first

    messages = Pacing()
    before = clock.now()
    for _ in range(51):
        messages.admit_message()
    assert clock.now() - before == timedelta(seconds=1)  # the 51st waited for the next second


def test_the_feed_reports_pacing_as_missing_and_asks_again_later(fake, manual):
    for symbol in ("AAPL", "MSFT", "NVDA"):
        fake.add_bars(symbol, "5 mins", [(utc("2026-11-30 14:30"), 10.0, 10.0, 10.0, 10.0, 1.0)])
        fake.push_bar(symbol, "5 mins", utc("2026-11-30 14:35"), 10.0)
    manual.set(utc("2026-11-30 14:35:02"))
    feed = make_feed(fake, pacing=Pacing(requests=2, max_wait=15))
    result = ask(feed, "5min", ["AAPL", "MSFT", "NVDA"])
    assert sorted(result.bars) == ["AAPL", "MSFT"]
    assert result.missing["NVDA"].startswith("IB pacing:")
    manual.advance(timedelta(minutes=10))
    assert "NVDA" in ask(feed, "5min", ["NVDA"], first_open="2026-11-30 14:30").bars


def test_a_universe_beyond_ibs_open_requests_is_refused_at_start(fake):
    feed = make_feed(fake)
    symbols = [f"S{i:02d}" for i in range(30)]
    with pytest.raises(FeedCapacityError) as refused:
        feed.check_capacity({"1min": symbols, "1day": symbols})
    message = str(refused.value)
    assert "\n" not in message and "30 symbols x 1day, 30 symbols x 1min" in message
    assert "60 keepUpToDate subscriptions" in message and "50" in message
    feed.check_capacity({"30min": symbols[:25], "1h": symbols[:25], "4h": symbols[:25]})  # one each
    with pytest.raises(FeedCapacityError, match="no 1week bars"):
        feed.check_capacity({"1week": ["AAPL"]})


def test_hour_bars_are_built_on_the_session_grid_from_ibs_half_hours(fake, manual):
    halves = [
        (utc("2026-11-30 14:30") + timedelta(minutes=30 * i), 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100.0)
        for i in range(2)
    ]
    fake.add_bars("AAPL", "30 mins", halves)
    fake.push_bar("AAPL", "30 mins", utc("2026-11-30 15:30"), 12.0)
    manual.set(utc("2026-11-30 15:30:01"))
    frame = ask(make_feed(fake), "1h", ["AAPL"]).bars["AAPL"]
    assert list(frame.index) == [UTC_TS("2026-11-30 14:30")]  # 09:30-10:30 New York
    assert frame.iloc[0].tolist() == [10.0, 12.0, 9.0, 11.5, 200.0]
    assert fake.history_requests[0]["barSizeSetting"] == "30 mins"
    with pytest.raises(FeedError, match="no 1week bars"):
        make_feed(fake).closed_bars("1week", ["AAPL"], UTC_TS("2026-11-30"), last_closed("1day"))


def test_data_errors_become_missing_with_the_reason(fake, manual):
    for symbol in ("AAPL", "MSFT"):
        fake.add_bars(symbol, "1 min", [(utc("2026-11-30 14:30"), 10.0, 10.0, 10.0, 10.0, 1.0)])
        fake.push_bar(symbol, "1 min", utc("2026-11-30 14:31"), 10.0)
    fake.bar_errors["MSFT"] = (354, "Requested market data is not subscribed.")
    fake.bar_errors["NVDA"] = (
        162,
        "Historical Market Data Service error message:API historical data query cancelled: 1 "
        "pacing violation",
    )
    manual.set(utc("2026-11-30 14:31:01"))
    feed = make_feed(fake)
    result = ask(feed, "1min", ["AAPL", "MSFT", "NVDA", "ZZZZ"])
    assert list(result.bars) == ["AAPL"]
    assert "no market data subscription (code 354)" in result.missing["MSFT"]
    assert "pacing violation (code 162)" in result.missing["NVDA"]
    assert "no security definition (code 200)" in result.missing["ZZZZ"]
    assert all("\n" not in reason for reason in result.missing.values())

    requests = len(fake.history_requests)
    manual.advance(20)
    del fake.bar_errors["NVDA"]
    fake.add_bars("NVDA", "1 min", [(utc("2026-11-30 14:30"), 5.0, 5.0, 5.0, 5.0, 1.0)])
    fake.push_bar("NVDA", "1 min", utc("2026-11-30 14:31"), 5.0)
    again = ask(feed, "1min", ["AAPL", "MSFT", "NVDA", "ZZZZ"], first_open="2026-11-30 14:30")
    assert sorted(again.bars) == ["AAPL", "NVDA"] and sorted(again.missing) == ["MSFT", "ZZZZ"]
    assert len(fake.history_requests) == requests + 1  # only the pacing casualty was asked again


def test_connectivity_is_one_line_and_subscriptions_come_back(fake, manual):
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-30 14:30"), 10.0, 10.0, 10.0, 10.0, 1.0)])
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:31"), 10.0)
    manual.set(utc("2026-11-30 14:31:01"))
    feed = make_feed(fake)
    assert "AAPL" in ask(feed, "1min", ["AAPL"]).bars and fake.subscriptions == 1

    fake.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
    fake.sleep()
    with pytest.raises(FeedError, match=r"lost its connection to IB \(1100\)") as lost:
        ask(feed, "1min", ["AAPL"])
    assert "\n" not in str(lost.value)
    fake.error(
        -1, 1102, "Connectivity between IB and Trader Workstation has been restored - data maintained."
    )
    fake.sleep()
    assert "AAPL" in ask(feed, "1min", ["AAPL"]).bars

    fake.drop_connection()
    fake.listening = False
    with pytest.raises(FeedError, match=r"IB bar feed: not connected to IB at 127.0.0.1:4002 \(client 18\)"):
        ask(feed, "1min", ["AAPL"])
    fake.restore()
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:32"), 10.0)
    manual.set(utc("2026-11-30 14:32:01"))
    assert list(ask(feed, "1min", ["AAPL"]).bars["AAPL"].index) == [UTC_TS("2026-11-30 14:31")]
    assert fake.subscriptions == 1 and fake.client_id == 18  # the feed's own client id


@pytest.mark.django_db
def test_collect_closed_bars_stores_what_the_feed_delivers(fake, manual):
    stocks = [Stock.objects.create(symbol=s) for s in ("AAPL", "MSFT")]
    for symbol in ("AAPL", "MSFT"):
        fake.add_bars(symbol, "1 min", [(utc("2026-11-30 14:30"), 10.0, 10.5, 9.5, 10.25, 300.0)])
    feed = make_feed(fake)
    manual.set(utc("2026-11-30 14:31:00.2"))
    for symbol in ("AAPL", "MSFT"):
        fake.push_bar(symbol, "1 min", utc("2026-11-30 14:31"), 10.3)
    collected = collect_closed_bars(feed, "1min", stocks, last_closed("1min"))
    assert collected.complete == ["AAPL", "MSFT"] and not collected.missing

    manual.set(utc("2026-11-30 14:32:00.2"))
    for symbol in ("AAPL", "MSFT"):
        fake.push_bar(symbol, "1 min", utc("2026-11-30 14:32"), 10.4)
    collected = collect_closed_bars(feed, "1min", stocks, last_closed("1min"))
    assert collected.complete == ["AAPL", "MSFT"] and not collected.revised
    stored = Bar.objects.filter(stock__symbol="AAPL", timeframe="1min").order_by("timestamp")
    assert [b.timestamp for b in stored] == [UTC_TS("2026-11-30 14:30"), UTC_TS("2026-11-30 14:31")]
    assert float(stored[0].close) == 10.25 and float(stored[0].volume) == 300.0


def test_the_fake_updates_a_subscription_as_ib_insync_does(fake, manual):
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-30 14:30"), 10.0, 10.0, 10.0, 10.0, 1.0)])
    fake.connect(clientId=3)
    bars = fake.reqHistoricalData(fake.contracts["AAPL"][0], "", "1 D", "1 min", "TRADES", True, 2, True)
    seen = []
    bars.updateEvent += lambda b, new: seen.append((len(b), new, b[-1].close))
    fake.tick("AAPL", "1 min", 10.5)
    fake.sleep()
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:31"), 11.0)
    fake.sleep()
    fake._publish("AAPL", "1 min", fake.tape[("AAPL", "1 min")][-1])  # the same bar again: silent
    fake.sleep()
    assert seen == [(1, False, 10.5), (2, True, 11.0)]


def test_the_feed_waits_a_moment_for_ib_to_start_the_next_bar(fake, manual):
    fake.add_bars("AAPL", "1 min", [(utc("2026-11-30 14:30"), 10.0, 10.0, 10.0, 10.0, 1.0)])
    manual.set(utc("2026-11-30 14:31:00.5"))
    feed = make_feed(fake, settle=0.5)
    ask(feed, "1min", ["AAPL"])  # subscribes
    fake.push_bar("AAPL", "1 min", utc("2026-11-30 14:31"), 10.2, delay=3)  # a few reads away
    assert list(ask(feed, "1min", ["AAPL"]).bars["AAPL"].index) == [UTC_TS("2026-11-30 14:30")]
