import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.providers.sample import synthetic_bars
from marketdata.resample import ResampleError, bucket_starts, resample_bars
from marketdata.timeframes import offset

TARGETS = ["5min", "15min", "30min", "1h", "1day"]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=1500),
    seed=st.integers(min_value=0, max_value=10_000),
    target=st.sampled_from(TARGETS),
    drop=st.lists(st.integers(min_value=0, max_value=1499), max_size=50),
)
def test_resampling_invariants(n, seed, target, drop):
    minutes = synthetic_bars("HYP", n, "1min", seed=seed)
    minutes = minutes.drop(index=minutes.index[[i for i in set(drop) if i < n]])
    bars = resample_bars(minutes, "1min", target)
    # volume is conserved, every source bar lands in exactly one bucket
    assert bars["volume"].sum() == pytest.approx(minutes["volume"].sum())
    keys = bucket_starts(minutes.index, target)
    assert set(keys) == set(bars.index)
    length = pd.Timedelta(hours=24) if target == "1day" else pd.Timedelta(offset(target))
    for key, group in minutes.groupby(keys):
        # no bar leaks into the next period
        if target != "1day":
            assert (group.index >= key).all() and (group.index < key + length).all()
        row = bars.loc[key]
        assert row["high"] == group["high"].max() and row["low"] == group["low"].min()
        assert row["open"] == group["open"].iloc[0] and row["close"] == group["close"].iloc[-1]
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    assert bars.index.is_monotonic_increasing and bars.index.is_unique


def test_hour_bars_align_to_the_session_open_and_days_to_the_new_york_date():
    minutes = synthetic_bars("AL", 390, "1min")
    hours = resample_bars(minutes, "1min", "1h")
    assert list(hours.index.strftime("%H:%M")) == [
        "14:30",
        "15:30",
        "16:30",
        "17:30",
        "18:30",
        "19:30",
        "20:30",
    ]
    assert hours["volume"].iloc[-1] == minutes["volume"].iloc[-30:].sum()  # the 15:30 bar has 30 minutes
    day = resample_bars(minutes, "1min", "1day")
    assert list(day.index) == [pd.Timestamp("2024-01-02", tz="UTC")]


def test_bad_requests():
    frame = synthetic_bars("X", 10, "5min")
    with pytest.raises(ResampleError, match="not a whole multiple"):
        resample_bars(frame, "5min", "5min")
    with pytest.raises(ResampleError, match="intraday"):
        resample_bars(synthetic_bars("X", 3, "1day"), "1day", "1day")
    with pytest.raises(ResampleError, match="cannot resample"):
        resample_bars(frame, "5min", "1week")
    assert resample_bars(frame.iloc[:0], "5min", "15min").empty
