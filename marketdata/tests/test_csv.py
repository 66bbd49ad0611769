from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from marketdata.models import Bar, Stock
from marketdata.providers.base import UnknownSymbol
from marketdata.providers.csv import CsvError, CsvProvider, read_bars_csv, read_bars_csv_text
from marketdata.services import import_csv

GOOD = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10.0,11.0,9.5,10.5,10.4,1000
2024-01-03,10.5,11.5,10.0,11.0,10.9,1200
2024-01-04,11.0,11.2,10.1,10.2,10.1,900
"""


def test_good_csv_parses_exactly_with_common_spellings():
    frame = read_bars_csv_text(GOOD, "1day")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame["close"].iloc[0] == Decimal("10.5")
    assert str(frame.index.tz) == "UTC" and frame.index[0].hour == 0
    intraday = read_bars_csv_text(
        "timestamp;o;h;l;c;vol\n".replace(";", ",")
        + "2024-01-02T09:30:00-05:00,1,2,0.5,1.5,10\n2024-01-02 14:31,1.5,2,1,1.2,0\n",
        "1min",
    )
    assert list(intraday.index.strftime("%H:%M")) == ["14:30", "14:31"]


def test_volume_is_optional_and_unsorted_rows_are_sorted():
    frame = read_bars_csv_text(
        "datetime,open,high,low,close\n2024-01-03,2,2,2,2\n2024-01-02,1,1,1,1\n", "1day"
    )
    assert list(frame["volume"]) == [0, 0] and frame.index.is_monotonic_increasing


def test_non_iso_dates_get_a_second_chance():
    frame = read_bars_csv_text("date,open,high,low,close,volume\n01/02/2024,1,1,1,1,1\n", "1day")
    assert frame.index[0].day == 2 and frame.index[0].month == 1


BAD = {
    "missing column": ("date,open,high,close,volume\n2024-01-02,1,2,1,1\n", "line 1: missing column(s) low"),
    "no time column": ("open,high,low,close\n1,2,1,1\n", "date/datetime/timestamp"),
    "bad time": (
        GOOD.replace("2024-01-03", "yesterday"),
        "line 3, column Date: cannot parse time 'yesterday'",
    ),
    "not a number": (GOOD.replace("11.5", "abc"), "line 3, column High: not a number: 'abc'"),
    "empty cell": (GOOD.replace(",1200", ","), "line 3, column Volume: missing value"),
    "nan": (GOOD.replace("11.5", "NaN"), "line 3, column High: not a number"),
    "zero price": (
        GOOD.replace("10.0,11.0,9.5", "0,11.0,9.5"),
        "line 2, column open: price must be >= 0.000001",
    ),
    "negative price": (GOOD.replace("9.5", "-9.5"), "line 2, column low: price must be >= 0.000001"),
    "high below open/close": (
        GOOD.replace("11.0,9.5,10.5", "10.2,9.5,10.5"),
        "line 2, column high: high 10.2",
    ),
    "low above open/close": (
        GOOD.replace("11.2,10.1,10.2", "11.2,10.5,10.2"),
        "line 4, column low: low 10.5",
    ),
    "negative volume": (GOOD.replace("900", "-900"), "line 4, column volume: must be a whole number >= 0"),
    "fractional volume": (GOOD.replace("900", "900.5"), "line 4, column volume"),
    "duplicate time": (GOOD.replace("2024-01-04", "2024-01-03"), "line 4, column timestamp: duplicate time"),
    "intraday time in a daily file": (
        GOOD.replace("2024-01-04", "2024-01-04 15:00"),
        "line 4, column timestamp",
    ),
    "header only": ("date,open,high,low,close,volume\n", "no data rows"),
    "empty file": ("", "the file is empty"),
    "ragged row": (GOOD + "2024-01-05,1,2,3\n2024-01-06,1,2,1,1,1,1,1,1\n", "not a readable CSV"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_defect_names_line_and_column(case):
    text, message = BAD[case]
    with pytest.raises(CsvError) as info:
        read_bars_csv_text(text, "1day", name="prices.csv")
    assert message in str(info.value)
    assert str(info.value).startswith("prices.csv")


@pytest.mark.django_db
def test_a_bad_file_leaves_the_database_untouched(tmp_path):
    stock = Stock.objects.create(symbol="AAPL")
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("2024-01-02", "2024-01-05").replace("11.5", "9"))
    import_csv(good, "AAPL", "1day")
    before = list(Bar.objects.values_list("timestamp", "close"))
    with pytest.raises(CommandError, match=r"bad.csv: line 3, column high.*nothing was imported"):
        call_command("import_bars", str(bad), "--symbol", "AAPL", "--timeframe", "1day")
    assert list(Bar.objects.values_list("timestamp", "close")) == before
    assert Bar.objects.filter(stock=stock).count() == 3


@pytest.mark.django_db
def test_import_command_creates_on_request(tmp_path, capsys):
    path = tmp_path / "msft.csv"
    path.write_text(GOOD)
    with pytest.raises(CommandError, match="unknown symbol"):
        call_command("import_bars", str(path), "--symbol", "MSFT", "--timeframe", "1day")
    with pytest.raises(CommandError, match="unknown timeframe"):
        call_command("import_bars", str(path), "--symbol", "MSFT", "--timeframe", "2day")
    call_command("import_bars", str(path), "--symbol", "msft", "--timeframe", "1day", "--create")
    assert "MSFT 1day: 3 inserted, 0 updated, 0 unchanged" in capsys.readouterr().out
    call_command("import_bars", str(path), "--symbol", "MSFT", "--timeframe", "1day", "--exchange", "")
    assert "0 inserted, 0 updated, 3 unchanged" in capsys.readouterr().out
    with pytest.raises(CommandError, match="file not found"):
        call_command("import_bars", str(tmp_path / "nope.csv"), "--symbol", "MSFT", "--timeframe", "1day")


def test_csv_provider_reads_symbol_files(tmp_path):
    (tmp_path / "AAPL_1day.csv").write_text(GOOD)
    provider = CsvProvider(tmp_path)
    frame = provider.fetch_bars("aapl", "1day", start="2024-01-03")
    assert len(frame) == 2
    quote = provider.latest_quote("AAPL")
    assert quote.price == Decimal("10.2") and quote.source == "csv"
    with pytest.raises(UnknownSymbol, match="MSFT_1day.csv"):
        provider.fetch_bars("MSFT", "1day")
    with pytest.raises(UnknownSymbol):
        provider.latest_quote("MSFT")


def test_read_from_path_uses_file_name(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD.replace("11.5", "x"))
    with pytest.raises(CsvError, match=r"^x.csv: line 3"):
        read_bars_csv(path, "1day")
