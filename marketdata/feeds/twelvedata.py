"""Twelve Data as a live feed: one batched ``time_series`` request per bar close.

All the symbols a timeframe trades go in one request (comma-separated; the API charges a
credit per symbol), through the shared credit limiter. ``adjust`` is always sent, since
Twelve Data's default differs between daily and intraday series, so what is stored says
one thing. A symbol whose part of a batched answer is an error is reported missing with
the API's message; an error for the whole request (bad key, rate limit after retries,
server down) raises, and the engine backs off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from django.conf import settings

from marketdata.bartime import drop_unclosed
from marketdata.clock import now
from marketdata.feeds.base import BarFeed, FeedCapacityError, FeedResult, wanted_times
from marketdata.providers.limiter import shared_limiter
from marketdata.providers.twelvedata import (
    DEFAULT_TZ,
    MAX_OUTPUTSIZE,
    NoData,
    TwelveDataClient,
    TwelveDataError,
    parse_time_series,
)
from marketdata.sessions import BarClose
from marketdata.timeframes import is_intraday, offset

ADJUSTMENTS = ("all", "splits", "dividends", "none")
SESSION_MINUTES = 390


def bars_per_session(timeframe: str) -> int:
    if not is_intraday(timeframe):
        return 1
    return -(-SESSION_MINUTES // int(pd.Timedelta(offset(timeframe)).total_seconds() // 60))


def credits_needed(universe: Mapping[str, Sequence[str]]) -> tuple[int, int]:
    """Credits a universe (timeframe -> symbols) needs: at the busiest minute (on the
    hour every intraday timeframe closes at once, and the close adds the daily bars) and
    over a full session."""
    peak = sum(len(symbols) for symbols in universe.values())
    per_day = sum(len(symbols) * bars_per_session(tf) for tf, symbols in universe.items())
    return peak, per_day


class TwelveDataFeed(BarFeed):
    name = "twelvedata"

    def __init__(self, client: TwelveDataClient | None = None, adjust: str | None = None) -> None:
        self.client = client or TwelveDataClient(
            settings.TWELVE_DATA_API_KEY,
            settings.TWELVE_DATA_BASE_URL,
            settings.TWELVE_DATA_TIMEOUT,
            limiter=shared_limiter(),
        )
        adjust = adjust or settings.TWELVE_DATA_ADJUST
        if adjust not in ADJUSTMENTS:
            raise ValueError(f"Twelve Data adjust must be one of {', '.join(ADJUSTMENTS)}; got {adjust!r}")
        self.adjustment = adjust

    def check_capacity(self, universe: Mapping[str, Sequence[str]]) -> None:
        peak, per_day = credits_needed(universe)
        limiter = self.client.limiter
        shape = ", ".join(f"{len(s)} symbols x {tf}" for tf, s in sorted(universe.items()))
        if peak > limiter.per_minute:
            raise FeedCapacityError(
                f"Twelve Data: {shape} needs {peak} credits in the minutes when bars close together, "
                f"but the plan allows {limiter.per_minute} a minute (TWELVE_DATA_CREDITS_PER_MINUTE)"
            )
        if per_day > limiter.per_day:
            raise FeedCapacityError(
                f"Twelve Data: {shape} needs {per_day} credits a session, but the plan allows "
                f"{limiter.per_day} a day (TWELVE_DATA_CREDITS_PER_DAY)"
            )

    def closed_bars(
        self, timeframe: str, symbols: Sequence[str], first_open: pd.Timestamp, last: BarClose
    ) -> FeedResult:
        result = FeedResult()
        if not symbols:
            return result
        wanted = wanted_times(timeframe, first_open, last)
        if wanted.empty:
            return result
        try:
            body = self.client.request(
                "time_series",
                credits=len(symbols),
                symbol=",".join(symbols),
                interval=timeframe,
                start_date=TwelveDataClient.format_date(wanted[0], timeframe, DEFAULT_TZ),
                end_date=TwelveDataClient.format_date(last.closes_at, timeframe, DEFAULT_TZ),
                outputsize=min(len(wanted) + 1, MAX_OUTPUTSIZE),
                adjust=self.adjustment,
            )
        except NoData as exc:
            result.missing = {symbol: str(exc) for symbol in symbols}
            return result
        result.credits = len(symbols)
        parts = {symbols[0]: body} if len(symbols) == 1 else body
        clock_now = now()
        for symbol in symbols:
            part = parts.get(symbol)
            if not isinstance(part, dict):
                result.missing[symbol] = "not in the answer"
                continue
            if part.get("status") == "error":
                result.missing[symbol] = str(part.get("message") or "error")[:200]
                continue
            try:
                frame, _zone = parse_time_series(part, symbol, timeframe)
            except TwelveDataError as exc:
                result.missing[symbol] = str(exc)
                continue
            frame = drop_unclosed(frame[frame.index.isin(wanted)], timeframe, clock_now)
            if frame.empty:
                result.missing[symbol] = f"no {timeframe} bar through {last.opens_at.isoformat()}"
            else:
                result.bars[symbol] = frame
        return result
