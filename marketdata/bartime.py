"""Bar time: a bar is keyed by its open time (UTC) and is closed once its period ended.

The NYSE calendar (exchange-calendars, XNYS) knows sessions, holidays and early closes:
an intraday bar ends at the earlier of its nominal end and its session's close, a daily
bar (keyed by the session date at 00:00 UTC) ends at that session's close.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

from marketdata import clock
from marketdata.timeframes import is_intraday, offset

CALENDAR_NAME = "XNYS"
EXCHANGE_TZ = "America/New_York"


@lru_cache(maxsize=1)
def calendar() -> xcals.ExchangeCalendar:
    """The NYSE calendar, from 1990 (the sample starts in 1999) to next year."""
    return xcals.get_calendar(CALENDAR_NAME, start="1990-01-01")


def _utc(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def session_close(day: pd.Timestamp) -> pd.Timestamp | None:
    """The close (UTC) of the session on ``day``'s date, or None when it is not a session."""
    cal = calendar()
    label = pd.Timestamp(day.date())
    if label < cal.first_session or label > cal.last_session or not cal.is_session(label):
        return None
    return cal.session_close(label)


def bar_end(ts: datetime | pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """When the bar opening at ``ts`` is complete (UTC)."""
    ts = _utc(ts)
    nominal = ts + offset(timeframe)
    if timeframe == "1day":
        return session_close(ts) or nominal
    if is_intraday(timeframe):
        local = ts.tz_convert(EXCHANGE_TZ)
        close = session_close(local)
        if close is not None and ts < close:
            return min(nominal, close)
    return nominal


def is_closed(ts: datetime | pd.Timestamp, timeframe: str, now: datetime | None = None) -> bool:
    return bar_end(ts, timeframe) <= _utc(now or clock.now())


def drop_unclosed(frame: pd.DataFrame, timeframe: str, now: datetime | None = None) -> pd.DataFrame:
    """``frame`` (sorted, UTC index) without its still-forming newest bars."""
    now = _utc(now or clock.now())
    keep = len(frame)
    # Only the newest bars can be open; walk back from the end.
    while keep and not is_closed(frame.index[keep - 1], timeframe, now):
        keep -= 1
    return frame.iloc[:keep]


def expected_times(first: pd.Timestamp, last: pd.Timestamp, timeframe: str) -> pd.DatetimeIndex:
    """The bar open times the calendar expects between ``first`` and ``last`` (inclusive).

    Intraday bars start at the session open and every bar length after it; daily bars are
    the sessions. Weekly and monthly bars are not checked (empty result).
    """
    cal = calendar()
    first, last = _utc(first), _utc(last)
    # Outside the calendar's range nothing is expected (rather than an error).
    first = max(first, cal.first_session.tz_localize("UTC"))
    last = min(last, cal.last_session.tz_localize("UTC") + pd.Timedelta(days=1))
    if first > last:
        return pd.DatetimeIndex([], tz="UTC").as_unit("us")
    if timeframe == "1day":
        sessions = cal.sessions_in_range(
            first.tz_localize(None).normalize(), last.tz_localize(None).normalize()
        )
        return pd.DatetimeIndex(sessions).tz_localize("UTC").as_unit("us")
    if not is_intraday(timeframe):
        return pd.DatetimeIndex([], tz="UTC").as_unit("us")
    step = pd.Timedelta(offset(timeframe))
    start_day = first.tz_convert(EXCHANGE_TZ).tz_localize(None).normalize()
    end_day = last.tz_convert(EXCHANGE_TZ).tz_localize(None).normalize()
    sessions = cal.sessions_in_range(start_day, end_day)
    parts = []
    for session in sessions:
        open_, close = cal.session_open(session), cal.session_close(session)
        parts.append(pd.date_range(open_, close - pd.Timedelta(microseconds=1), freq=step))
    if not parts:
        return pd.DatetimeIndex([], tz="UTC").as_unit("us")
    times = parts[0].append(parts[1:]).as_unit("us")
    return times[(times >= first) & (times <= last)]
