from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from marketdata.models import Bar, Stock
from marketdata.providers.sample import synthetic_bars
from marketdata.selectors import bars_frame, get_stock, last_bar_time
from marketdata.services import IngestResult, ingest_bars
from marketdata.validation import BarDataError

from .conftest import make_bars

pytestmark = pytest.mark.django_db


def test_ingest_is_idempotent_and_counts(stock):
    frame = make_bars(50)
    assert ingest_bars(stock, "1min", frame) == IngestResult(50, 0, 0)
    assert ingest_bars(stock, "1min", frame) == IngestResult(0, 0, 50)
    changed = frame.copy()
    changed.iloc[10:20, changed.columns.get_loc("close")] += 0.25
    more = pd.concat([changed, make_bars(5, start="2024-01-02 15:20")])
    assert ingest_bars(stock, "1min", more) == IngestResult(5, 10, 40)
    assert Bar.objects.filter(stock=stock).count() == 55
    assert ingest_bars(stock, "1min", more) == IngestResult(0, 0, 55)


def test_ingest_keeps_exact_decimals_from_strings_and_floats(stock):
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], tz="UTC")
    frame = pd.DataFrame(
        {
            "open": ["123.456789", Decimal("10.1")],
            "high": ["123.456789", Decimal("10.3")],
            "low": ["100.000001", Decimal("9.9")],
            "close": ["120.5", Decimal("10.2")],
            "volume": [5, 6],
        },
        index=index,
    )
    assert ingest_bars(stock, "1day", frame).inserted == 2
    first = Bar.objects.filter(stock=stock).order_by("timestamp").first()
    assert first.open == Decimal("123.456789") and first.low == Decimal("100.000001")
    floats = pd.DataFrame(
        {"open": [0.1], "high": [0.3], "low": [0.1], "close": [0.2], "volume": [1.0]}, index=index[:1]
    )
    assert ingest_bars(stock, "1day", floats) == IngestResult(0, 1, 0)
    assert Bar.objects.get(stock=stock, timestamp=index[0]).high == Decimal("0.3")
    assert ingest_bars(stock, "1day", floats) == IngestResult(0, 0, 1)
    # More than 6 decimals round like NUMERIC(18, 6) and then count as unchanged.
    precise = floats.assign(close=0.2000001)
    assert ingest_bars(stock, "1day", precise) == IngestResult(0, 0, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(high=f["low"] - 1), "column high"),
        (lambda f: f.assign(low=f["high"] + 1), "column low"),
        (lambda f: f.assign(open=0.0), "column open: price must be >= 0.000001"),
        (lambda f: f.assign(close=np.nan), "column close: not a number"),
        (lambda f: f.assign(volume=-1.0), "column volume"),
        (lambda f: f.assign(volume=1.5), "column volume"),
        (lambda f: f.drop(columns=["volume"]), "missing column(s) volume"),
        (lambda f: f.tz_localize(None), "timezone-aware"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate time"),
        (lambda f: f.reset_index(drop=True), "DatetimeIndex"),
        (lambda f: f.assign(high=2e12), "< 1e12"),
        (lambda f: f.assign(low=0.0000001), "column low: price must be >= 0.000001"),
    ],
)
def test_bad_frames_are_rejected_whole(stock, change, message):
    ingest_bars(stock, "1min", make_bars(3))
    before = list(Bar.objects.order_by("timestamp").values_list("timestamp", "close"))
    bad = change(make_bars(5, base=200.0))
    with pytest.raises(BarDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_bars(stock, "1min", bad)
    assert list(Bar.objects.order_by("timestamp").values_list("timestamp", "close")) == before


def test_daily_bars_must_be_keyed_at_midnight(stock):
    with pytest.raises(BarDataError, match="session date"):
        ingest_bars(stock, "1day", make_bars(2))
    with pytest.raises(ValueError, match="unknown timeframe"):
        ingest_bars(stock, "3min", make_bars(2))


def test_empty_frame_and_unsorted_input(stock):
    assert ingest_bars(stock, "1min", make_bars(0)) == IngestResult()
    frame = make_bars(4).iloc[::-1]
    assert ingest_bars(stock, "1min", frame).inserted == 4
    assert last_bar_time(stock, "1min") == make_bars(4).index[-1]


def test_bars_frame_shape_and_filters(stock):
    frame = synthetic_bars("AAPL", 300)
    ingest_bars(stock, "1min", frame)
    out = bars_frame(stock, "1min")
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert out.index.name == "timestamp" and str(out.index.tz) == "UTC"
    assert str(out.index.dtype) == "datetime64[us, UTC]"
    assert all(out.dtypes == "float64")
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    part = bars_frame("aapl", "1min", frame.index[10], frame.index[19])
    assert len(part) == 10 and part.index[0] == frame.index[10]
    assert bars_frame(stock, "5min").empty
    assert str(bars_frame(stock, "5min").index.dtype) == "datetime64[us, UTC]"


def test_get_stock_names_unknown_symbol(db):
    with pytest.raises(Stock.DoesNotExist, match="unknown symbol"):
        get_stock("zzz")


def test_ingest_result_arithmetic():
    total = IngestResult(1, 2, 3) + IngestResult(1, 1, 1)
    assert total == IngestResult(2, 3, 4) and total.total == 9
    assert str(total) == "2 inserted, 3 updated, 4 unchanged"


def test_frame_from_arrays_sorts_by_time():
    from marketdata.pgcopy import frame_from_arrays

    micros = np.array([3_000_000, 1_000_000, 2_000_000], dtype="int64")
    columns = {c: micros.astype("float64") for c in ("open", "high", "low", "close", "volume")}
    frame = frame_from_arrays(micros, columns)
    assert list(frame["close"]) == [1e6, 2e6, 3e6] and str(frame.index.dtype) == "datetime64[us, UTC]"


def test_a_concurrent_first_load_falls_back_to_the_upsert(stock, is_postgres, monkeypatch):
    if not is_postgres:
        pytest.skip("the plain-INSERT fast path is PostgreSQL only")
    from marketdata import pgcopy

    frame = make_bars(10)
    ingest_bars(stock, "1min", frame.iloc[5:])
    # Pretend the range looked empty, as it would before another process committed.
    monkeypatch.setattr(pgcopy, "range_has_bars", lambda *args: False)
    assert ingest_bars(stock, "1min", frame) == IngestResult(5, 0, 5)
    assert Bar.objects.filter(stock=stock).count() == 10
