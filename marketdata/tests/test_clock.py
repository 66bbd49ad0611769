"""The market clock and the session schedule it drives."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata import clock
from marketdata.bartime import bar_end, expected_times
from marketdata.sessions import Phase, market_state, next_bar_close, next_closes, previous_bar_close


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


class TestClocks:
    def test_simulated_clock_runs_faster_than_real_time(self):
        start = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
        sim = clock.SimulatedClock(start, speed=600)
        assert sim.sleep(60)  # a clock minute: a tenth of a real second
        elapsed = sim.now() - start
        assert timedelta(seconds=60) <= elapsed < timedelta(seconds=120)

    def test_simulated_sleep_is_interrupted_by_wake(self):
        sim = clock.SimulatedClock(datetime(2026, 11, 30, tzinfo=UTC), speed=1)
        wake = threading.Event()
        threading.Timer(0.05, wake.set).start()
        assert sim.sleep_until(sim.now() + timedelta(hours=1), wake) is False

    def test_manual_clock_jumps_to_the_end_of_a_sleep(self):
        manual = clock.ManualClock(datetime(2026, 11, 30, 14, 30, tzinfo=UTC))
        target = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
        assert manual.sleep_until(target)
        assert manual.now() == target

    def test_the_process_clock_can_be_swapped_and_restored(self):
        manual = clock.ManualClock(datetime(2020, 1, 2, tzinfo=UTC))
        before = clock.current()
        with clock.using(manual):
            assert clock.now() == datetime(2020, 1, 2, tzinfo=UTC)
        assert clock.current() is before

    @pytest.mark.parametrize("bad", [0, -1.5])
    def test_speed_must_be_positive(self, bad):
        with pytest.raises(ValueError, match="positive"):
            clock.SimulatedClock(datetime(2026, 1, 2, tzinfo=UTC), speed=bad)

    def test_naive_instants_are_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            clock.ManualClock(datetime(2026, 1, 2))

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-30T14:30:00Z", datetime(2026, 11, 30, 14, 30, tzinfo=UTC)),
            ("2026-11-30T09:30:00-05:00", datetime(2026, 11, 30, 14, 30, tzinfo=UTC)),
        ],
    )
    def test_parse_start(self, text, expected):
        assert clock.parse_start(text) == expected

    @pytest.mark.parametrize("text", ["yesterday", "2026-11-30T14:30:00"])
    def test_parse_start_names_the_problem(self, text):
        with pytest.raises(ValueError, match=text):
            clock.parse_start(text)


class TestMarketState:
    def test_regular_session(self):
        state = market_state(utc("2026-11-30 15:00"))
        assert state.phase == Phase.OPEN and state.is_open
        assert state.next_close == utc("2026-11-30 21:00")
        assert state.next_open == utc("2026-12-01 14:30")

    def test_early_close_after_thanksgiving(self):
        state = market_state(utc("2026-11-27 15:00"))
        assert state.phase == Phase.EARLY_CLOSE
        assert state.next_close == utc("2026-11-27 18:00")  # 13:00 New York

    def test_holiday(self):
        state = market_state(utc("2026-11-26 15:00"))  # Thanksgiving
        assert state.phase == Phase.HOLIDAY and not state.is_open
        assert state.next_open == utc("2026-11-27 14:30")

    def test_weekend_and_before_the_open(self):
        assert market_state(utc("2026-11-28 15:00")).phase == Phase.CLOSED
        before = market_state(utc("2026-11-30 14:29:59"))
        assert before.phase == Phase.CLOSED and before.next_open == utc("2026-11-30 14:30")

    def test_dst_moves_the_open_in_utc(self):
        # 2026-03-09 is the first session after the switch to daylight saving time.
        assert market_state(utc("2026-03-06 15:00")).next_close == utc("2026-03-06 21:00")
        assert market_state(utc("2026-03-09 14:00")).next_close == utc("2026-03-09 20:00")


class TestSchedule:
    def test_intraday_bars_on_the_session_grid(self):
        bar = next_bar_close(utc("2026-11-30 14:31:30"), "5min")
        assert (bar.opens_at, bar.closes_at) == (utc("2026-11-30 14:30"), utc("2026-11-30 14:35"))

    def test_a_bar_end_itself_schedules_the_next_bar(self):
        bar = next_bar_close(utc("2026-11-30 14:35"), "5min")
        assert bar.opens_at == utc("2026-11-30 14:35")

    def test_the_last_hourly_bar_is_short_and_the_next_is_tomorrow(self):
        last = next_bar_close(utc("2026-11-30 20:30"), "1h")  # 15:30-16:00 New York
        assert (last.opens_at, last.closes_at) == (utc("2026-11-30 20:30"), utc("2026-11-30 21:00"))
        assert next_bar_close(utc("2026-11-30 21:00"), "1h").opens_at == utc("2026-12-01 14:30")

    def test_early_close_ends_the_day(self):
        last = previous_bar_close(utc("2026-11-27 19:00"), "1min")
        assert (last.opens_at, last.closes_at) == (utc("2026-11-27 17:59"), utc("2026-11-27 18:00"))

    def test_daily_bar_is_the_session_keyed_at_midnight_utc(self):
        bar = next_bar_close(utc("2026-11-25 22:00"), "1day")  # after Wednesday's close
        assert (bar.opens_at, bar.closes_at) == (utc("2026-11-27"), utc("2026-11-27 18:00"))
        assert previous_bar_close(utc("2026-11-26 12:00"), "1day").opens_at == utc("2026-11-25")

    def test_timeframes_that_close_together_are_due_together(self):
        due = next_closes(utc("2026-11-30 14:59:30"), ["30min", "1min", "5min", "1day"])
        assert [bar.timeframe for bar in due] == ["1min", "5min", "30min"]
        assert {bar.closes_at for bar in due} == {utc("2026-11-30 15:00")}
        at_the_close = next_closes(utc("2026-11-30 20:59:30"), ["1h", "1day"])
        assert [bar.timeframe for bar in at_the_close] == ["1h", "1day"]
        assert next_closes(utc("2026-11-30 15:00"), []) == []

    def test_weekly_bars_are_not_scheduled(self):
        with pytest.raises(ValueError, match="1week"):
            next_bar_close(utc("2026-11-30 15:00"), "1week")

    @settings(max_examples=150, deadline=None)
    @given(
        at=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 6, 1)).map(
            lambda d: pd.Timestamp(d, tz="UTC")
        ),
        timeframe=st.sampled_from(["1min", "5min", "15min", "30min", "1h", "4h", "1day"]),
    )
    def test_schedule_agrees_with_bar_keys_and_ends(self, at, timeframe):
        upcoming = next_bar_close(at, timeframe)
        assert upcoming.closes_at > at
        assert bar_end(upcoming.opens_at, timeframe) == upcoming.closes_at
        assert upcoming.opens_at in expected_times(upcoming.opens_at, upcoming.opens_at, timeframe)
        # The bar that closed last before that one is what previous_bar_close sees.
        assert previous_bar_close(upcoming.closes_at, timeframe) == upcoming
        last = previous_bar_close(at, timeframe)
        assert last.closes_at <= at
        assert next_bar_close(last.closes_at, timeframe).closes_at >= upcoming.closes_at
