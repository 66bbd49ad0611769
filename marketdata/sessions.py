"""Exchange sessions as the market clock sees them: is the market open, when does the next
bar close, which bar closed last.

All of it comes from the XNYS calendar in :mod:`marketdata.bartime` (holidays, early
closes at 13:00 New York, DST), so the engine's schedule, the overview's market state and
the closed-bar filters agree with each other and with the backtester's bar keys: an
intraday bar opens on the session's grid (09:30, 09:35 ... New York) and ends at the
earlier of its nominal end and the close; a daily bar is keyed by its session date
(00:00 UTC) and ends at the session's close.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from marketdata.bartime import EXCHANGE_TZ, calendar
from marketdata.timeframes import is_intraday, offset


class Phase:
    OPEN = "open"
    EARLY_CLOSE = "early_close"  # open today, closing early
    CLOSED = "closed"  # between sessions on a trading day, or at the weekend
    HOLIDAY = "holiday"  # a weekday with no session


@dataclass(frozen=True)
class MarketState:
    at: pd.Timestamp
    phase: str
    next_open: pd.Timestamp  # the next session's open (the current one's when it has not opened)
    next_close: pd.Timestamp  # the close of the current session, or of the next one

    @property
    def is_open(self) -> bool:
        return self.phase in (Phase.OPEN, Phase.EARLY_CLOSE)

    def as_dict(self) -> dict[str, str | bool]:
        return {
            "phase": self.phase,
            "is_open": self.is_open,
            "at": self.at.isoformat(),
            "next_open": self.next_open.isoformat(),
            "next_close": self.next_close.isoformat(),
            "time_zone": EXCHANGE_TZ,
        }


@dataclass(frozen=True)
class BarClose:
    """One bar of ``timeframe``: its key (open time, UTC) and when it is complete."""

    timeframe: str
    opens_at: pd.Timestamp
    closes_at: pd.Timestamp


def _utc(instant: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(instant)
    if ts.tz is None:
        raise ValueError(f"session instants are timezone-aware; got naive {ts.isoformat()}")
    return ts.tz_convert("UTC")


def _minute(ts: pd.Timestamp) -> pd.Timestamp:
    # exchange-calendars answers minute questions on whole minutes.
    return ts.floor("min")


def is_early_close(session: pd.Timestamp) -> bool:
    return session in calendar().early_closes


def market_state(at: datetime | pd.Timestamp) -> MarketState:
    """The market's phase at ``at`` and its next open and close."""
    cal = calendar()
    at = _utc(at)
    minute = _minute(at)
    if cal.is_open_on_minute(minute, ignore_breaks=True):
        session = cal.minute_to_session(minute, direction="previous")
        phase = Phase.EARLY_CLOSE if is_early_close(session) else Phase.OPEN
        return MarketState(at, phase, cal.next_open(minute), cal.session_close(session))
    next_open = cal.next_open(minute)
    today = pd.Timestamp(at.tz_convert(EXCHANGE_TZ).date())
    holiday = today.day_of_week < 5 and not cal.is_session(today)
    next_session = cal.minute_to_session(next_open, direction="next")
    return MarketState(
        at, Phase.HOLIDAY if holiday else Phase.CLOSED, next_open, cal.session_close(next_session)
    )


def _session_at_or_after(at: pd.Timestamp) -> pd.Timestamp:
    """The session in progress at ``at``, or else the next one to open."""
    cal = calendar()
    minute = _minute(at)
    if cal.is_open_on_minute(minute, ignore_breaks=True):
        return cal.minute_to_session(minute, direction="previous")
    return cal.minute_to_session(cal.next_open(minute), direction="next")


def next_bar_close(after: datetime | pd.Timestamp, timeframe: str) -> BarClose:
    """The first bar of ``timeframe`` that completes strictly after ``after``."""
    cal = calendar()
    after = _utc(after)
    if timeframe == "1day":
        session = _session_at_or_after(after)
        close = cal.session_close(session)
        if close <= after:
            session = cal.next_session(session)
            close = cal.session_close(session)
        return BarClose(timeframe, session.tz_localize("UTC"), close)
    if not is_intraday(timeframe):
        raise ValueError(f"the live schedule runs intraday and daily bars, not {timeframe!r}")
    step = pd.Timedelta(offset(timeframe))
    session = _session_at_or_after(after)
    while True:
        open_, close = cal.session_open(session), cal.session_close(session)
        index = max(0, (after - open_) // step) if after >= open_ else 0
        opens_at = open_ + index * step
        if opens_at < close:
            ends_at = min(opens_at + step, close)
            if ends_at <= after:  # ``after`` is exactly a bar end: the next bar
                opens_at, ends_at = ends_at, min(ends_at + step, close)
            if opens_at < close and ends_at > after:
                return BarClose(timeframe, opens_at, ends_at)
        session = cal.next_session(session)


def previous_bar_close(at: datetime | pd.Timestamp, timeframe: str) -> BarClose | None:
    """The last bar of ``timeframe`` complete at ``at`` (None before the calendar starts)."""
    cal = calendar()
    at = _utc(at)
    if timeframe == "1day":
        minute = _minute(at)
        session = cal.minute_to_session(minute, direction="previous")
        if cal.session_close(session) > at:
            if session == cal.first_session:
                return None
            session = cal.previous_session(session)
        return BarClose(timeframe, session.tz_localize("UTC"), cal.session_close(session))
    if not is_intraday(timeframe):
        raise ValueError(f"the live schedule runs intraday and daily bars, not {timeframe!r}")
    step = pd.Timedelta(offset(timeframe))
    session = cal.minute_to_session(_minute(at), direction="previous")
    open_, close = cal.session_open(session), cal.session_close(session)
    if at >= close:
        return _last_bar(timeframe, open_, close, step)
    index = (at - open_) // step if at >= open_ else 0
    if index >= 1:  # the bar before the one in progress
        return BarClose(timeframe, open_ + (index - 1) * step, open_ + index * step)
    if session == cal.first_session:
        return None
    previous = cal.previous_session(session)
    return _last_bar(timeframe, cal.session_open(previous), cal.session_close(previous), step)


def _last_bar(timeframe: str, open_: pd.Timestamp, close: pd.Timestamp, step: pd.Timedelta) -> BarClose:
    """A session's last bar: it may be short when the close is off the grid."""
    opens_at = open_ + ((close - open_ - pd.Timedelta(microseconds=1)) // step) * step
    return BarClose(timeframe, opens_at, close)


def next_closes(after: datetime | pd.Timestamp, timeframes: Iterable[str]) -> list[BarClose]:
    """The bars that complete next, at the same instant, among ``timeframes``: at 10:00
    New York the 1min, 5min, 15min and 30min bars close together (oldest timeframe
    first: the shortest bars step first, as the replay orders them)."""
    upcoming = [next_bar_close(after, tf) for tf in sorted(set(timeframes), key=_bar_length)]
    if not upcoming:
        return []
    first = min(bar.closes_at for bar in upcoming)
    return [bar for bar in upcoming if bar.closes_at == first]


def _bar_length(timeframe: str) -> pd.Timedelta:
    return pd.Timedelta(days=1) if timeframe == "1day" else pd.Timedelta(offset(timeframe))
