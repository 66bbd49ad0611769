"""Live mode: the market clock wakes the engine at every bar close, the feed brings the bar.

Between closes the engine sleeps on the market clock (servicing broker events, commands
and the heartbeat meanwhile), so a session on a simulated clock runs in seconds and one
on the wall clock all day. At each close of any active timeframe (several timeframes
closing together are handled together, shortest first, as the replay orders them), after
a small availability delay, the feed is asked once for the bar that just closed for every
symbol of that timeframe (``marketdata.live.collect_closed_bars``: one batched request,
or one per gap after an outage), the bars are stored, and the engine steps on them.

A bar is traded only while it is fresh: within ``stale_after`` seconds of its close.
Symbols whose bar has not arrived by then are journaled as stale and skipped for that
bar; bars that arrive later (a backfill after an outage, or after the engine was down)
are stored, so indicators see a complete history, but never traded late. Provider errors
back off and are retried until the deadline; a bad API key stops the engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from django.conf import settings

from marketdata import clock as market_clock
from marketdata.bartime import bar_end
from marketdata.feeds import FEEDS, BarFeed, FeedError, get_feed
from marketdata.live import collect_closed_bars
from marketdata.providers.base import ProviderError
from marketdata.providers.twelvedata import InvalidApiKey
from marketdata.sessions import BarClose, market_state, next_closes, previous_bar_close
from strategies.events import record_event
from strategies.models import Severity

if TYPE_CHECKING:  # pragma: no cover - the engine hands itself in
    from trading.engine.loop import Engine

logger = logging.getLogger("trading.engine.live")

SERVICE_SLICE = 0.25  # real seconds between broker/command checks while waiting for a close


class FeedStopped(RuntimeError):
    """The feed cannot go on (a bad API key): the engine stops with this one line."""


@dataclass
class LiveOptions:
    feed: str = "demo"  # a marketdata.feeds name (twelvedata, demo) or ibkr
    delay: float = 2.0  # seconds after a close before the bar is asked for
    stale_after: float = 60.0  # seconds after a close that its bar may still be traded
    retry: float = 5.0  # first wait after a failed or partial request; doubles


@dataclass
class TimeframeState:
    state: str = "waiting"  # waiting, fresh, partial, stale, down
    last_bar: str | None = None
    next_close: str | None = None
    missing: list[str] = field(default_factory=list)
    error: str | None = None


LIVE_FEEDS = (*FEEDS, "ibkr")


def make_feed(name: str) -> BarFeed:
    """The live feed called ``name``; IB's lives with the IB adapter in execution."""
    if name != "ibkr":
        return get_feed(name)
    if not (settings.IBKR_HOST and settings.IBKR_PORT and settings.IBKR_DATA_CLIENT_ID is not None):
        raise FeedError("--feed ibkr needs IBKR_HOST, IBKR_PORT and IBKR_CLIENT_ID (or IBKR_DATA_CLIENT_ID)")
    # Imported here on purpose, as get_broker does: only an IB feed loads ib_insync.
    from execution.brokers.ibkr.feed import IBBarFeed

    return IBBarFeed(
        settings.IBKR_HOST,
        settings.IBKR_PORT,
        settings.IBKR_DATA_CLIENT_ID,
        connect_timeout=settings.IBKR_CONNECT_TIMEOUT,
    )


class LiveDriver:
    def __init__(self, engine: Engine, options: LiveOptions, feed: BarFeed | None = None) -> None:
        self.engine = engine
        self.options = options
        self.feed = feed or make_feed(options.feed)
        self.clock = market_clock.current()
        self.states: dict[str, TimeframeState] = {}
        self.credits_today = 0
        self._credit_day: str | None = None
        self.handled_through = self.clock.now()

    # --- what the pages and /health see ---------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "feed": {
                "name": self.feed.name,
                "simulated": self.feed.simulated or self.clock.simulated,
                "clock": self.clock.describe(),
                "market_time": now.isoformat(),
                "market": market_state(now).as_dict(),
                "credits_today": self.credits_today,
                "adjustment": self.feed.adjustment,
                "timeframes": {tf: vars(state) for tf, state in sorted(self.states.items())},
            }
        }

    def universe(self) -> dict[str, list[str]]:
        return {tf: self.engine.strategies.symbols(tf) for tf in self.engine.by_timeframe}

    # --- start: capacity, then catch up ---------------------------------------------------
    def start(self) -> None:
        """Refuse a universe the feed cannot cover, then backfill every timeframe through
        its last closed bar (trading only what is still fresh)."""
        self.feed.check_capacity(self.universe())
        now = self.clock.now()
        for timeframe in self.engine.by_timeframe:
            last = previous_bar_close(now, timeframe)
            if last is not None:
                self.collect_and_step(last, retry=False)
        self.handled_through = now
        record_event(
            "engine.live",
            f"live on the {self.feed.name} feed, {self.clock.describe()}; next bar close "
            f"{self._next_due_text()}",
            feed=self.feed.name,
            simulated=self.feed.simulated or self.clock.simulated,
        )

    def _next_due_text(self) -> str:
        due = next_closes(self.handled_through, self.engine.by_timeframe)
        return due[0].closes_at.isoformat() if due else "none"

    # --- the loop -------------------------------------------------------------------------
    def run(self, until: pd.Timestamp | None = None) -> None:
        """Wake at each bar close until stopped (or until the clock passes ``until``)."""
        while not self.engine.stop_requested:
            timeframes = list(self.engine.by_timeframe)
            if not timeframes:
                self.wait_until(self.clock.now() + timedelta(minutes=1))
                self.handled_through = self.clock.now()
                continue
            due = next_closes(self.handled_through, timeframes)
            close = due[0].closes_at
            if until is not None and close > until:
                return
            for bar in due:
                self.states.setdefault(bar.timeframe, TimeframeState()).next_close = close.isoformat()
            self.wait_until(close + timedelta(seconds=self.options.delay))
            if self.engine.stop_requested:
                return
            for bar in due:
                if bar.timeframe in self.engine.by_timeframe:  # still traded after a refresh
                    self.collect_and_step(bar)
            self.handled_through = close

    def wait_until(self, instant) -> None:
        """Sleep on the market clock until ``instant``, servicing the engine meanwhile."""
        while not self.engine.stop_requested:
            real = self.clock.real_seconds_until(instant)
            if real <= 0:
                self.engine.service()
                self.clock.sleep_until(instant)  # a manual clock jumps here
                return
            self.engine.idle(min(real, SERVICE_SLICE))  # services first, then sleeps

    # --- one bar close --------------------------------------------------------------------
    def collect_and_step(self, bar: BarClose, retry: bool = True) -> None:
        timeframe = bar.timeframe
        state = self.states.setdefault(timeframe, TimeframeState())
        symbols = self.engine.strategies.symbols(timeframe)
        complete = self._collect(bar, symbols, state, retry)
        stale = sorted(set(symbols) - complete)
        state.missing = stale
        state.last_bar = bar.opens_at.isoformat()
        if stale and state.state != "down":
            state.state = "stale" if not complete else "partial"
        if stale and retry:  # (at start-up the bars behind are old news, not stale)
            record_event(
                "feed.stale",
                f"{timeframe} bar of {bar.opens_at.isoformat()} not in within {self.options.stale_after:g}s "
                f"of its close for {', '.join(stale)}: not traded",
                severity=Severity.WARNING,
                timeframe=timeframe,
                bar=bar.opens_at.isoformat(),
                symbols=stale,
            )
        elif not stale:
            state.state, state.error = "fresh", None
        for symbol in symbols:
            self.engine.feed.append_new(symbol, timeframe)
        self._step_through(bar, complete if stale else None)

    def _collect(self, bar: BarClose, symbols: list[str], state: TimeframeState, retry: bool) -> set[str]:
        deadline = bar.closes_at + timedelta(seconds=self.options.stale_after)
        wanted = list(symbols)
        complete: set[str] = set()
        wait = self.options.retry
        while wanted:
            stocks = [self.engine.stocks[s] for s in wanted]
            try:
                collected = collect_closed_bars(self.feed, bar.timeframe, stocks, bar)
            except InvalidApiKey as exc:
                raise FeedStopped(str(exc)) from None
            except ProviderError as exc:
                if state.state != "down":
                    record_event(
                        "feed.failed",
                        f"{self.feed.name} {bar.timeframe}: {exc}; retrying",
                        severity=Severity.ERROR,
                        timeframe=bar.timeframe,
                    )
                state.state, state.error = "down", str(exc)
            else:
                self._count_credits(collected.credits)
                complete |= set(collected.complete)
                if collected.revised:
                    record_event(
                        "bar.revised",
                        f"{self.feed.name} revised {bar.timeframe} bars: {', '.join(collected.revised)}",
                        timeframe=bar.timeframe,
                        symbols=collected.revised,
                    )
                if state.state == "down":
                    record_event("feed.restored", f"{self.feed.name} {bar.timeframe} answers again")
                    state.state, state.error = "partial", None
            wanted = [s for s in wanted if s not in complete]
            now = self.clock.now()
            if not wanted or not retry or now + timedelta(seconds=wait) > deadline:
                return complete
            self.wait_until(now + timedelta(seconds=wait))
            if self.engine.stop_requested:
                return complete
            wait = min(wait * 2, self.options.stale_after)
        return complete

    def _count_credits(self, credits: int) -> None:
        day = self.clock.now().date().isoformat()  # the plan's day is UTC
        if day != self._credit_day:
            self._credit_day, self.credits_today = day, 0
        self.credits_today += credits

    def _step_through(self, bar: BarClose, only: set[str] | None) -> None:
        """Step every pending bar time of the timeframe up to ``bar``: fresh ones are
        traded, stale ones (a backfill) only move the cursor past them."""
        timeframe = bar.timeframe
        now = self.clock.now()
        fresh_after = pd.Timestamp(now) - pd.Timedelta(seconds=self.options.stale_after)
        skipped: list[pd.Timestamp] = []
        for ts, tf in self.engine.feed.pending_times([timeframe]):
            stamp = pd.Timestamp(ts)
            if stamp > bar.opens_at:
                break
            fresh = bar_end(stamp, tf) >= fresh_after
            if fresh and stamp == bar.opens_at and only is not None and not only:
                self.engine.feed.advance(tf, ts)  # no symbol's bar came: nothing to step
            elif fresh:
                self.engine.step(tf, ts, only=only if stamp == bar.opens_at else None)
            else:
                skipped.append(stamp)
        if skipped:
            cursor = self.engine.cursor.get(timeframe)
            if cursor is None or skipped[-1] > pd.Timestamp(cursor):
                self.engine.feed.advance(timeframe, skipped[-1].to_pydatetime())
        if skipped:
            record_event(
                "engine.bars_skipped",
                f"{len(skipped)} {timeframe} bars from {skipped[0].isoformat()} to {skipped[-1].isoformat()} "
                f"closed more than {self.options.stale_after:g}s ago: stored, not traded",
                timeframe=timeframe,
                count=len(skipped),
            )
