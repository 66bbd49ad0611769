import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from marketdata.indicators import CATALOGUE, IndicatorError, IndicatorSpec, compute_one, parse_spec
from marketdata.models import Indicator
from marketdata.providers.sample import synthetic_bars
from marketdata.services import PANDAS_TA_VERSION, ingest_bars, store_indicators

pytestmark = pytest.mark.django_db


@pytest.fixture
def daily(stock):
    ingest_bars(stock, "1day", synthetic_bars("AAPL", 120, "1day"))
    return stock


def test_store_is_idempotent_skips_warmup_and_records_metadata(daily):
    specs = [IndicatorSpec.of("sma", length=10), IndicatorSpec.of("macd")]
    first = store_indicators(daily, "1day", specs)
    assert [(r.spec, r.inserted, r.updated, r.unchanged) for r in first] == [
        ("sma_10", 110, 0, 0),
        ("macd_12_26_9", 0, 0, 0),  # 10 x (26 + 9) bars of warm-up > 120 bars: nothing stored
    ]
    again = store_indicators(daily, "1day", specs)
    assert [(r.inserted, r.updated, r.unchanged) for r in again] == [(0, 0, 110), (0, 0, 0)]
    row = Indicator.objects.filter(name="sma").order_by("timestamp").first()
    bars = synthetic_bars("AAPL", 120, "1day")
    assert row.timestamp == bars.index[10]  # the first 10 (warm-up) rows are not stored
    assert row.value == pytest.approx(bars["close"].iloc[1:11].mean())
    assert row.values == {"sma_10": row.value} and row.parameters == {"length": 10}
    assert row.params_key == "length=10"
    assert row.metadata == {
        "pandas_ta": PANDAS_TA_VERSION,
        "parameters": {"length": 10},
        "columns": ["sma_10"],
        "warmup": 10,
    }


def test_changed_bars_update_only_what_changed(daily):
    spec = [IndicatorSpec.of("bbands", length=5)]
    store_indicators(daily, "1day", spec)
    bars = synthetic_bars("AAPL", 120, "1day")
    bars.iloc[-1, bars.columns.get_loc("close")] = bars["close"].iloc[-1] * 1.01
    bars.iloc[-1, bars.columns.get_loc("high")] = bars[["high", "close"]].iloc[-1].max()
    ingest_bars(daily, "1day", bars)
    (result,) = store_indicators(daily, "1day", spec)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 114)  # only the last window
    row = Indicator.objects.filter(name="bbands").last()
    assert set(row.values) == set(IndicatorSpec.of("bbands", length=5).columns)


def test_start_limits_what_is_stored_not_the_warmup(daily):
    bars = synthetic_bars("AAPL", 120, "1day")
    (result,) = store_indicators(daily, "1day", [IndicatorSpec.of("rsi", length=3)], start=bars.index[100])
    assert result.inserted == 20
    assert Indicator.objects.earliest("timestamp").timestamp == bars.index[100]


def test_whole_catalogue_by_default(stock):
    ingest_bars(stock, "1min", synthetic_bars("AAPL", 700))
    results = store_indicators(stock, "1min")
    assert [r.spec.split("_")[0] for r in results] == list(CATALOGUE)
    assert all(r.inserted > 0 for r in results)
    vwap = Indicator.objects.filter(name="vwap").values_list("value", flat=True)
    assert all(np.isfinite(list(vwap)))


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_catalogue_indicator_is_causal(name):
    frame = synthetic_bars("CAUSAL", 400, "1min", seed=3)
    spec = IndicatorSpec.of(name)
    whole = compute_one(frame, spec)
    for cut in (150, 260, 399):
        prefix = compute_one(frame.iloc[:cut], spec)
        pd.testing.assert_frame_equal(prefix.iloc[spec.warmup :], whole.iloc[spec.warmup : cut], rtol=1e-9)


def test_lookahead_indicators_are_refused_and_specs_parse():
    for name in ("dpo", "ichimoku", "zigzag"):
        with pytest.raises(IndicatorError, match="looks into the future"):
            IndicatorSpec.of(name)
    assert parse_spec("macd:fast=8, slow=21,signal=5") == IndicatorSpec.of("macd", fast=8, slow=21, signal=5)
    assert parse_spec("RSI") == IndicatorSpec.of("rsi")
    with pytest.raises(IndicatorError, match="expected name:key=value"):
        parse_spec("sma:length")
    with pytest.raises(IndicatorError, match="whole number"):
        parse_spec("sma:length=2.5")
    with pytest.raises(IndicatorError, match="expected a number"):
        parse_spec("sma:length=ten")


def test_compute_indicators_command(daily, capsys):
    call_command("compute_indicators", "AAPL", "--timeframe", "1day", "--indicator", "sma:length=5")
    assert "AAPL 1day sma_5: 115 inserted, 0 updated, 0 unchanged" in capsys.readouterr().out
    call_command(
        "compute_indicators", "--timeframe", "1day", "--indicator", "sma:length=5", "--start", "2024-03-01"
    )
    assert "0 inserted, 0 updated" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--indicator: dpo is refused"):
        call_command("compute_indicators", "AAPL", "--indicator", "dpo")
    with pytest.raises(CommandError, match="--start: cannot parse 'tomorrow'"):
        call_command("compute_indicators", "AAPL", "--start", "tomorrow")
    with pytest.raises(CommandError, match="unknown symbol 'ZZZ'"):
        call_command("compute_indicators", "ZZZ")


def test_json_rows_match_json_dumps():
    from marketdata.services import _json, _json_rows

    columns = {"b_1": [1.5, None], "a_1": [0.1, 2.0]}
    assert _json_rows(columns) == [_json({"a_1": 0.1, "b_1": 1.5}), _json({"a_1": 2.0, "b_1": None})]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sma", {"length": True}, "sma.length: expected a number"),
        ("sma", {"length": [5]}, "expected a number"),
        ("sma", {"length": 0}, "must be >= 1"),
        ("sma", {"length": 10**6}, "must be <= 5000"),
        ("sma", {"span": 3}, "unknown parameter(s) span; expected length"),
        ("obv", {"length": 3}, "expected none"),
        ("foo", {}, "unknown indicator 'foo'; available: adx"),
    ],
)
def test_parameter_errors_name_indicator_and_parameter(name, params, message):
    with pytest.raises(IndicatorError) as info:
        IndicatorSpec.of(name, **params)
    assert message in str(info.value)


def test_compute_edges():
    from marketdata.indicators import compute

    spec = IndicatorSpec.of("bbands", length=20, std=2)
    assert str(spec) == "BBANDS(20, 2.0)" and spec.params_key == "length=20,std=2.0"
    short = synthetic_bars("E", 5)
    assert compute_one(short, IndicatorSpec.of("sma", length=20)).isna().all().all()
    frame = compute(short, [IndicatorSpec.of("sma", length=2), IndicatorSpec.of("sma", length=2)])
    assert list(frame.columns)[-1] == "sma_2"
    assert compute(frame, [IndicatorSpec.of("sma", length=2)]) is frame


def test_indicator_fast_path_falls_back_to_the_upsert(daily, is_postgres, monkeypatch):
    if not is_postgres:
        pytest.skip("the plain-INSERT fast path is PostgreSQL only")
    from marketdata import pgcopy

    spec = [IndicatorSpec.of("sma", length=10)]
    bars = synthetic_bars("AAPL", 120, "1day")
    store_indicators(daily, "1day", spec, start=bars.index[60])
    monkeypatch.setattr(pgcopy, "_indicator_range_has_rows", lambda *args: False)
    (result,) = store_indicators(daily, "1day", spec)
    assert (result.inserted, result.updated, result.unchanged) == (50, 0, 60)
