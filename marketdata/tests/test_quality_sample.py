import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from marketdata.providers import ProviderError, get_provider
from marketdata.providers.base import UnknownSymbol
from marketdata.providers.csv import CsvProvider
from marketdata.providers.sample import SampleProvider, synthetic_bars
from marketdata.providers.twelvedata import TwelveDataProvider
from marketdata.quality import check_frame


def test_synthetic_bars_are_valid_reproducible_and_on_the_session_grid():
    frame = synthetic_bars("AAPL", 1000)
    assert len(frame) == 1000 and all(frame.dtypes == "float64")
    assert str(frame.index.tz) == "UTC" and frame.index.name == "timestamp" and frame.index.is_unique
    assert (frame["high"] >= np.maximum(frame["open"], frame["close"])).all()
    assert (frame["low"] <= np.minimum(frame["open"], frame["close"])).all()
    assert (frame[["open", "high", "low", "close"]] > 0).all().all() and (frame["volume"] >= 0).all()
    pd.testing.assert_frame_equal(frame, synthetic_bars("AAPL", 1000))
    assert not frame.equals(synthetic_bars("AAPL", 1000, seed=1))
    assert not frame["close"].equals(synthetic_bars("MSFT", 1000)["close"])
    assert check_frame(frame, "AAPL", "1min").ok
    assert len(synthetic_bars("X", 5, "1week")) == 5
    with pytest.raises(ValueError, match="calendar ends"):
        synthetic_bars("X", 10, "1day", start="2099-01-01")


def test_check_frame_finds_every_kind_of_problem():
    frame = synthetic_bars("Q", 20, "1day")
    frame = frame.drop(frame.index[3])  # a missing session
    frame.iloc[5, frame.columns.get_loc("high")] = frame["low"].iloc[5] - 1  # high below open/close
    frame.iloc[6, frame.columns.get_loc("volume")] = 0
    weekend = pd.DataFrame(
        frame.iloc[[0]].values, columns=frame.columns, index=[pd.Timestamp("2024-01-06", tz="UTC")]
    )
    frame = pd.concat([frame, frame.iloc[[2]], weekend, frame.iloc[[1]]])
    report = check_frame(frame, "Q", "1day")
    assert not report.ok
    assert report.missing == [pd.Timestamp("2024-01-05", tz="UTC")]
    assert report.unexpected == [pd.Timestamp("2024-01-06", tz="UTC")]
    assert len(report.duplicates) == 2 and len(report.out_of_order) == 2
    assert len(report.zero_volume) == 1
    assert [why for _, why in report.anomalies] == ["high below max(open, close)"]
    text = "\n".join(report.lines(limit=1))
    assert "missing (calendar gaps): 1" in text and "(+1 more)" in text
    empty = check_frame(frame.iloc[:0], "Q", "1day")
    assert empty.ok and empty.lines() == ["Q 1day: 0 bars None .. None", "  ok"]


def test_sample_provider(settings):
    provider = SampleProvider()
    assert {s for s, _, _ in provider.files()} == {"SPX", "IXIC"}
    spx = provider.fetch_bars("SPX", "1day", "2018-12-01", "2018-12-31")
    # 19 sessions: 2018-12-05 was closed for a national day of mourning.
    assert len(spx) == 19 and provider.latest_quote("SPX").price == spx["close"].iloc[-1]
    minutes = provider.fetch_bars("AAPL", "5min", "2024-01-02", "2024-01-03")
    assert len(minutes) == 78 and check_frame(minutes, "AAPL", "5min").ok
    assert provider.fetch_bars("AAPL", "5min", "2024-01-06", "2024-01-07").empty
    assert provider.latest_quote("AAPL").source == "sample"
    with pytest.raises(UnknownSymbol, match="no 1day bars for AAPL"):
        provider.fetch_bars("AAPL", "1day")


def test_get_provider(settings):
    assert isinstance(get_provider("sample"), SampleProvider)
    settings.MARKETDATA_CSV_DIR = "/tmp"
    assert isinstance(get_provider("CSV"), CsvProvider)
    settings.TWELVE_DATA_API_KEY = "k" * 10
    assert isinstance(get_provider("twelvedata"), TwelveDataProvider)
    with pytest.raises(ProviderError, match="unknown market data provider 'bloomberg'"):
        get_provider("bloomberg")


@pytest.mark.django_db
def test_check_bars_command(capsys):
    call_command("load_sample")
    call_command("check_bars", "--timeframe", "1day")
    out = capsys.readouterr().out
    assert "SPX 1day: 5031 bars" in out and "IXIC" in out and "zero volume: 2" in out


@pytest.mark.django_db
def test_check_bars_strict_fails_on_gaps():
    from django.core.management import CommandError

    from marketdata.models import Stock
    from marketdata.services import ingest_bars

    stock = Stock.objects.create(symbol="GAP")
    bars = synthetic_bars("GAP", 10, "1day")
    ingest_bars(stock, "1day", bars.drop(bars.index[4]))
    call_command("check_bars", "GAP", "--timeframe", "1day")
    with pytest.raises(CommandError, match="1 series with problems"):
        call_command("check_bars", "GAP", "--timeframe", "1day", "--strict")
