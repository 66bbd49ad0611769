import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from marketdata.models import Bar, Stock
from marketdata.providers.base import ProviderError
from marketdata.services import fetch_and_store, load_sample

pytestmark = pytest.mark.django_db


def test_stocks_add_list_deactivate(capsys):
    call_command("stocks", "add", "aapl", "MSFT", "--exchange", "nasdaq", "--name", "Big tech")
    call_command("stocks", "add", "AAPL", "--exchange", "NASDAQ")
    out = capsys.readouterr().out
    assert "added AAPL:NASDAQ" in out and "added MSFT:NASDAQ" in out and "exists AAPL:NASDAQ" in out
    call_command("stocks", "deactivate", "msft")
    call_command("stocks", "list")
    out = capsys.readouterr().out
    assert "deactivated 1 stock(s)" in out and "AAPL" in out and "MSFT" not in out.split("deactivated")[1]
    call_command("stocks", "list", "--all")
    assert "MSFT" in capsys.readouterr().out
    call_command("stocks", "add", "MSFT", "--exchange", "NASDAQ")  # re-activates
    assert Stock.objects.get(symbol="MSFT").active


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "BAD SYMBOL"], "invalid symbol 'BAD SYMBOL'"),
        (["add", "AAPL", "--currency", "dollars"], "invalid currency"),
        (["deactivate", "AAPL", "NOPE"], "unknown symbol(s): AAPL, NOPE"),
    ],
)
def test_stocks_bad_arguments_change_nothing(args, message):
    with pytest.raises(CommandError) as info:
        call_command("stocks", *args)
    assert message in str(info.value) and Stock.objects.count() == 0


def test_load_sample_is_idempotent(capsys):
    call_command("load_sample")
    assert "sample SPX 1day: 5031 inserted, 0 updated, 0 unchanged" in capsys.readouterr().out
    call_command("load_sample")
    assert "sample SPX 1day: 0 inserted, 0 updated, 5031 unchanged" in capsys.readouterr().out
    spx = Stock.objects.get(symbol="SPX")
    assert spx.exchange == "INDEX" and spx.name == "S&P 500 index"
    assert Bar.objects.filter(stock=spx, timeframe="1day").count() == 5031


def test_load_sample_reports_empty_and_bad_directories(settings, tmp_path, capsys):
    settings.SAMPLE_DATA_DIR = tmp_path
    call_command("load_sample")
    assert "no sample files found" in capsys.readouterr().out
    (tmp_path / "AAA_1day.csv").write_text("date,open,high,low,close\n2024-01-02,1,1,1,1\n")
    (tmp_path / "BAD_1day.csv").write_text("date,open,high,low,close\n2024-01-02,1,1,2,1\n")
    with pytest.raises(CommandError, match="BAD_1day.csv: line 2, column low"):
        call_command("load_sample")
    assert not Stock.objects.exists() and not Bar.objects.exists()  # the good file was not stored either
    assert load_sample(tmp_path.parent / "nothing-here") == []


def test_fetch_bars_with_the_sample_provider_is_incremental(capsys):
    call_command("stocks", "add", "AAPL")
    call_command(
        "fetch_bars",
        "--timeframe",
        "5min",
        "--provider",
        "sample",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-03",
    )
    assert "[1/1] AAPL 5min: 78 inserted, 0 updated, 0 unchanged" in capsys.readouterr().out
    call_command("fetch_bars", "AAPL", "--timeframe", "5min", "--provider", "sample", "--end", "2024-01-04")
    # from the last stored bar: it is re-fetched (unchanged), the next session is new
    assert "AAPL 5min: 78 inserted, 0 updated, 1 unchanged" in capsys.readouterr().out


def test_fetch_bars_errors(capsys):
    with pytest.raises(CommandError, match="no active stocks"):
        call_command("fetch_bars")
    call_command("stocks", "add", "AAPL")
    with pytest.raises(CommandError, match="unknown market data provider"):
        call_command("fetch_bars", "--provider", "nope")
    with pytest.raises(CommandError, match="1 of 1 fetch"):
        call_command("fetch_bars", "--provider", "sample", "--timeframe", "1day")
    assert "AAPL 1day: failed: sample: no 1day bars for AAPL" in capsys.readouterr().err
    with pytest.raises(CommandError, match="--timeframe: unknown timeframe"):
        call_command("fetch_bars", "--timeframe", "1year")


def test_fetch_and_store_uses_the_default_provider():
    stock = Stock.objects.create(symbol="SPX")
    assert fetch_and_store(stock, "1day").inserted == 5031
    with pytest.raises(ProviderError):
        fetch_and_store(Stock.objects.create(symbol="NOPE"), "1day")


def test_resample_bars_command(capsys):
    call_command("stocks", "add", "AAPL")
    call_command(
        "fetch_bars",
        "--timeframe",
        "1min",
        "--provider",
        "sample",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-03",
    )
    call_command("resample_bars", "AAPL", "--to", "1h")
    assert "AAPL 1min -> 1h: 7 inserted" in capsys.readouterr().out
    call_command("resample_bars", "AAPL", "--to", "1day")
    call_command("resample_bars", "AAPL", "--to", "1h")
    assert "0 inserted, 0 updated, 7 unchanged" in capsys.readouterr().out.splitlines()[-1]
    day = Bar.objects.get(timeframe="1day")
    minutes = Bar.objects.filter(timeframe="1min")
    assert day.timestamp == pd.Timestamp("2024-01-02", tz="UTC")
    assert day.volume == sum(minutes.values_list("volume", flat=True))
    with pytest.raises(CommandError, match="not a whole multiple"):
        call_command("resample_bars", "AAPL", "--from", "5min", "--to", "5min")
