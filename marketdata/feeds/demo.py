"""The demo feed: never-ending, seeded synthetic bars on the real session grid.

Every bar is a pure function of (seed, symbol, time): a day's one-minute path comes from
a generator seeded by the session, started where a seeded day-by-day random walk puts it,
and any timeframe's bar is that path's slice (open, highest, lowest, last). So a restart,
a backfill and a replay of the same bars see exactly the same prices, and `make run`
can trade "live" on a simulated clock for as long as it runs. Prices are on the cent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from marketdata.bartime import calendar, drop_unclosed
from marketdata.clock import now
from marketdata.feeds.base import BarFeed, FeedResult, wanted_times
from marketdata.sessions import BarClose
from marketdata.timeframes import is_intraday, offset

DAILY_SIGMA = 0.012
MINUTE_SIGMA = 0.0008


def _key(symbol: str) -> int:
    return zlib.crc32(symbol.upper().encode())


@lru_cache(maxsize=256)
def _day_levels(seed: int, symbol: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Each session's opening price: a seeded walk over the calendar's whole range."""
    sessions = calendar().sessions
    steps = np.random.default_rng([seed, _key(symbol), 0]).normal(0.0, DAILY_SIGMA, len(sessions))
    return sessions, (20.0 + _key(symbol) % 400) * np.exp(np.cumsum(steps) - steps[0])


@lru_cache(maxsize=1024)
def _minute_path(seed: int, symbol: str, session: pd.Timestamp) -> tuple[pd.Timestamp, np.ndarray]:
    """The session's open (UTC) and its price at the start of each minute plus the close."""
    sessions, levels = _day_levels(seed, symbol)
    start = levels[sessions.get_loc(session)]
    open_, close = calendar().session_open(session), calendar().session_close(session)
    minutes = int((close - open_).total_seconds() // 60)
    day = (session - sessions[0]).days
    steps = np.random.default_rng([seed, _key(symbol), 1, day]).normal(0.0, MINUTE_SIGMA, minutes)
    return open_, start * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))


def demo_bar(symbol: str, timeframe: str, opens_at: pd.Timestamp, seed: int = 0) -> dict[str, float]:
    """The demo bar of ``symbol`` opening at ``opens_at`` (a key on the session grid)."""
    cal = calendar()
    if is_intraday(timeframe):
        session = cal.minute_to_session(opens_at, direction="previous")
        open_, path = _minute_path(seed, symbol, session)
        first = int((opens_at - open_).total_seconds() // 60)
        length = int(pd.Timedelta(offset(timeframe)).total_seconds() // 60)
        segment = path[first : first + length + 1]
    else:
        session = opens_at.tz_localize(None)
        _open, segment = _minute_path(seed, symbol, session)
    rng = np.random.default_rng([seed, _key(symbol), 2, int(opens_at.value // 60_000_000_000)])
    volume = float(np.round(rng.lognormal(np.log(5000 * max(1, len(segment) - 1) ** 0.5), 0.6)))
    return {
        "open": round(float(segment[0]), 2),
        "high": round(float(segment.max()), 2),
        "low": round(float(segment.min()), 2),
        "close": round(float(segment[-1]), 2),
        "volume": volume,
    }


class DemoFeed(BarFeed):
    name = "demo"
    simulated = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def closed_bars(
        self, timeframe: str, symbols: Sequence[str], first_open: pd.Timestamp, last: BarClose
    ) -> FeedResult:
        wanted = wanted_times(timeframe, first_open, last)
        result = FeedResult()
        clock_now = now()
        for symbol in symbols:
            rows = [demo_bar(symbol, timeframe, t, self.seed) for t in wanted]
            frame = pd.DataFrame(
                rows, index=wanted.rename("timestamp"), columns=list(rows[0]) if rows else None
            )
            frame = drop_unclosed(frame, timeframe, clock_now) if len(frame) else frame
            if len(frame):
                result.bars[symbol] = frame.astype("float64")
            else:
                result.missing[symbol] = f"no {timeframe} bar through {last.opens_at.isoformat()}"
        return result
