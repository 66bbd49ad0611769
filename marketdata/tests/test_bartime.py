from datetime import UTC, datetime

import pandas as pd

from marketdata.bartime import bar_end, drop_unclosed, expected_times, is_closed, session_close

from .conftest import make_bars


def ts(text):
    return pd.Timestamp(text, tz="UTC")


def test_daily_bar_closes_at_the_session_close_including_early_closes():
    assert bar_end(ts("2024-01-02"), "1day") == ts("2024-01-02 21:00")  # 16:00 New York (EST)
    assert bar_end(ts("2024-07-01"), "1day") == ts("2024-07-01 20:00")  # EDT
    assert bar_end(ts("2024-11-29"), "1day") == ts("2024-11-29 18:00")  # day after Thanksgiving: 13:00
    assert bar_end(ts("2024-12-25"), "1day") == ts("2024-12-26")  # holiday: no session
    assert session_close(ts("1985-01-02")) is None  # before the calendar


def test_intraday_bar_ends_at_its_length_or_the_session_close():
    assert bar_end(ts("2024-01-02 14:30"), "1min") == ts("2024-01-02 14:31")
    assert bar_end(ts("2024-01-02 20:30"), "1h") == ts("2024-01-02 21:00")  # 15:30 bar ends at the close
    assert bar_end(ts("2024-11-29 17:30"), "1h") == ts("2024-11-29 18:00")  # early close
    assert bar_end(ts("2024-01-06 12:00"), "1h") == ts("2024-01-06 13:00")  # weekend: nominal
    assert bar_end(ts("2024-01-01"), "1week") == ts("2024-01-08")
    assert bar_end(datetime(2024, 1, 2, 14, 30), "5min") == ts("2024-01-02 14:35")  # naive = UTC


def test_is_closed_and_drop_unclosed():
    now = ts("2024-01-02 14:32:30")
    assert is_closed(ts("2024-01-02 14:31"), "1min", now)
    assert not is_closed(ts("2024-01-02 14:32"), "1min", now)
    frame = make_bars(5)
    assert list(drop_unclosed(frame, "1min", now).index.strftime("%H:%M")) == ["14:30", "14:31"]
    assert drop_unclosed(frame, "1min", datetime(2030, 1, 1, tzinfo=UTC)).equals(frame)
    assert drop_unclosed(frame, "1min", ts("2020-01-01")).empty
    assert len(drop_unclosed(frame, "1min")) == 5  # default now: long past


def test_expected_times_follow_the_calendar():
    days = expected_times(ts("2024-12-23"), ts("2024-12-27"), "1day")
    assert list(days.strftime("%m-%d")) == ["12-23", "12-24", "12-26", "12-27"]
    minutes = expected_times(ts("2024-11-29"), ts("2024-11-29 23:00"), "1min")
    assert len(minutes) == 210 and minutes[0] == ts("2024-11-29 14:30")  # early close: 9:30-13:00
    hours = expected_times(ts("2024-01-02"), ts("2024-01-03"), "1h")
    assert list(hours.strftime("%H:%M")) == ["14:30", "15:30", "16:30", "17:30", "18:30", "19:30", "20:30"]
    assert expected_times(ts("2024-01-06"), ts("2024-01-07"), "5min").empty
    assert expected_times(ts("2024-01-01"), ts("2024-03-01"), "1week").empty
