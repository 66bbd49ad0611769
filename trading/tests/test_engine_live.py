"""Live mode on a manual market clock: the engine wakes at each bar close, asks the feed,
stores and trades the bar, over sessions with an open, a holiday and an early close; its
trades equal a replay of the same bars; stale bars and a provider outage are handled."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from execution.brokers.paper import PaperBroker
from execution.models import (
    ExecutionState,
    Fill,
    Order,
    PaperAccount,
    PaperFill,
    PaperOrder,
    PaperPosition,
    Trade,
)
from marketdata import clock
from marketdata.feeds import DemoFeed, FeedError, FeedResult
from marketdata.feeds.base import BarFeed
from marketdata.models import Bar, Stock
from marketdata.providers.base import ProviderError
from marketdata.services import ingest_bars
from marketdata.sessions import previous_bar_close
from strategies.models import Strategy, StrategyEvent, TradeSignal
from trading.engine import Engine, EngineOptions
from trading.engine.live import LiveOptions

pytestmark = pytest.mark.django_db

SYMBOLS = ("LIVA", "LIVB")
TIMEFRAME = "15min"
WEDNESDAY_OPEN = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
FRIDAY_EARLY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00 New York


class CountingFeed(BarFeed):
    """The demo feed, counting requests; ``down`` makes it fail like a provider that is away."""

    name = "counting"

    def __init__(self):
        self.demo = DemoFeed(seed=7)
        self.requests: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
        self.down_until: datetime | None = None

    def closed_bars(self, timeframe, symbols, first_open, last):
        if self.down_until is not None and clock.now() < self.down_until:
            raise ProviderError("counting feed: HTTP 503 from the provider")
        self.requests.append((timeframe, first_open, last.opens_at))
        return self.demo.closed_bars(timeframe, symbols, first_open, last)


@pytest.fixture
def strategy():
    stocks = [Stock.objects.create(symbol=s) for s in SYMBOLS]
    # The warm-up: the session before, as fetch_bars would have stored it.
    with clock.using(clock.ManualClock(WEDNESDAY_OPEN)):
        last = previous_bar_close(clock.now(), TIMEFRAME)
        history = DemoFeed(seed=7).closed_bars(
            TIMEFRAME, SYMBOLS, pd.Timestamp("2026-11-20 14:30", tz="UTC"), last
        )
    for stock in stocks:
        ingest_bars(stock, TIMEFRAME, history.bars[stock.symbol])
    strategy = Strategy.objects.create(
        name="live",
        strategy_class="sma_crossover",
        parameters={"fast": 2, "slow": 5},
        timeframe=TIMEFRAME,
        allow_short=True,
        active=True,
    )
    strategy.stocks.add(*stocks)
    return strategy


def run_live(feed: BarFeed, start: datetime, end: datetime, **live) -> Engine:
    options = EngineOptions(end=end, heartbeat_interval=0, live=LiveOptions(delay=1.0, **live))
    with clock.using(clock.ManualClock(start)):
        engine = Engine(options, broker=PaperBroker())
        engine.live.feed = feed
        assert engine.run() == 0
    return engine


def trades() -> list[tuple]:
    return sorted(
        (t.stock.symbol, t.direction, t.entry_time, t.entry_price, t.exit_time, t.exit_price, t.quantity)
        for t in Trade.objects.select_related("stock")
    )


def forget_trading() -> None:
    """Everything the engine and the paper broker wrote, so a replay starts as live did."""
    for model in (Fill, Trade, Order, TradeSignal, PaperFill, PaperOrder, PaperPosition, PaperAccount):
        model.objects.all().delete()
    ExecutionState.objects.all().delete()


def test_a_live_week_fetches_every_bar_after_its_close_and_equals_a_replay(strategy):
    feed = CountingFeed()
    engine = run_live(feed, WEDNESDAY_OPEN, FRIDAY_EARLY_CLOSE)
    stored = Bar.objects.filter(stock__symbol="LIVA", timeframe=TIMEFRAME, timestamp__gte=WEDNESDAY_OPEN)
    times = list(stored.order_by("timestamp").values_list("timestamp", flat=True))
    # Wednesday 26 bars, nothing on Thanksgiving, Friday 14 bars to the 13:00 close.
    assert len(times) == 26 + 14
    assert times[0] == WEDNESDAY_OPEN and times[-1] == datetime(2026, 11, 27, 17, 45, tzinfo=UTC)
    # One batched request per bar close for both symbols (plus the start-up catch-up).
    assert len(feed.requests) == 1 + 40
    assert all(first == last for _, first, last in feed.requests[1:])
    live_trades = trades()
    assert live_trades, "the demo bars should trade"
    assert engine.bars_processed == 40

    forget_trading()
    replay = Engine(
        EngineOptions(start=WEDNESDAY_OPEN, end=FRIDAY_EARLY_CLOSE, speed=None, heartbeat_interval=0),
        broker=PaperBroker(),
    )
    assert replay.run() == 0
    assert trades() == live_trades


def test_bars_that_arrive_too_late_are_stored_but_not_traded(strategy):
    feed = CountingFeed()
    # The provider is away for the first two hours of Wednesday's session.
    feed.down_until = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
    engine = run_live(
        feed, WEDNESDAY_OPEN, datetime(2026, 11, 25, 18, 0, tzinfo=UTC), stale_after=60, retry=20
    )
    events = StrategyEvent.objects.values_list("event_type", flat=True)
    assert "feed.failed" in events and "feed.restored" in events and "feed.stale" in events
    # Everything is stored in the end (the backfill after the outage), in order...
    stored = Bar.objects.filter(stock__symbol="LIVB", timeframe=TIMEFRAME, timestamp__gte=WEDNESDAY_OPEN)
    assert stored.count() == 14
    # ... but only the bars that closed after the provider came back were traded: the
    # 16:15 bar (asked for at 16:30:01) and the six after it; 14:30 to 16:00 were too old.
    assert engine.bars_processed == 7
    skipped = StrategyEvent.objects.filter(event_type="engine.bars_skipped").latest("id")
    assert skipped.metadata["count"] == 7
    assert StrategyEvent.objects.filter(event_type="feed.stale").count() == 7


def test_a_symbol_missing_at_the_deadline_is_skipped_for_that_bar(strategy):
    class HalfFeed(CountingFeed):
        def closed_bars(self, timeframe, symbols, first_open, last):
            result = super().closed_bars(timeframe, symbols, first_open, last)
            if last.opens_at == pd.Timestamp("2026-11-25 15:00", tz="UTC") and "LIVB" in result.bars:
                self.asked_for_livb += 1
                bars = {s: frame for s, frame in result.bars.items() if s != "LIVB"}
                return FeedResult(bars=bars, missing={"LIVB": "not yet"})
            return result

    feed = HalfFeed()
    feed.asked_for_livb = 0

    run_live(feed, WEDNESDAY_OPEN, datetime(2026, 11, 25, 16, 0, tzinfo=UTC), stale_after=30, retry=10)
    stale = StrategyEvent.objects.get(event_type="feed.stale")
    assert stale.metadata["symbols"] == ["LIVB"]
    # LIVB's 15:00 bar was asked for again until the deadline (at +1, +11 and +31 s the
    # deadline had passed: two asks), never traded.
    assert feed.asked_for_livb == 2
    assert not TradeSignal.objects.filter(
        stock__symbol="LIVB", timestamp=pd.Timestamp("2026-11-25 15:00", tz="UTC")
    )


def test_the_heartbeat_shows_the_feed_and_the_market(strategy):
    engine = run_live(CountingFeed(), WEDNESDAY_OPEN, datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    status = engine.live.status()["feed"]
    assert status["name"] == "counting" and status["simulated"] is True
    assert status["timeframes"][TIMEFRAME]["state"] == "fresh"
    assert status["market"]["phase"] == "open"


@pytest.fixture
def restore_clock():
    before = clock.current()
    yield
    clock.install(before)


def test_run_trader_runs_a_session_on_a_simulated_clock(strategy, restore_clock, settings):
    settings.ENGINE_BAR_DELAY = 1.0
    out = StringIO()
    call_command(
        "run_trader",
        "--feed=demo",
        "--clock-start=2026-11-25T14:30:00Z",
        "--clock-speed=3000",  # 15 minutes in 0.3 s
        "--to=2026-11-25T16:00:00Z",
        "--broker=paper",
        stdout=out,
    )
    assert "live on the demo feed, simulated clock from 2026-11-25T14:30:00+00:00 at 3000x" in out.getvalue()
    stored = Bar.objects.filter(stock__symbol="LIVA", timeframe=TIMEFRAME, timestamp__gte=WEDNESDAY_OPEN)
    assert stored.count() == 6  # 14:30 ... 15:45, each fetched after its close


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clock-start=tomorrow"], "--clock-start: not an ISO 8601 instant"),
        (["--clock-start=2026-11-25T14:30:00"], "--clock-start: '2026-11-25T14:30:00' has no time zone"),
        (["--clock-speed=0"], "--clock-speed: clock speed must be a positive number"),
        (["--clock-speed=fast"], "--clock-speed: expected a number"),
        (["--feed=bloomberg"], "--feed: expected one of"),
        (["--live", "--from=2026-11-25"], "--from replays stored bars"),
    ],
)
def test_run_trader_names_bad_clock_and_feed_arguments(args, message, restore_clock):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("run_trader", *args)


def test_the_ib_feed_needs_its_connection_settings(settings):
    from trading.engine.live import make_feed

    settings.IBKR_HOST = ""
    with pytest.raises(FeedError, match="IBKR_HOST"):
        make_feed("ibkr")
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_DATA_CLIENT_ID = "127.0.0.1", 4002, 8
    feed = make_feed("ibkr")
    assert feed.name == "ibkr" and type(feed).__name__ == "IBBarFeed"
