"""CSV bars: common column spellings recognised, every row validated, a bad file rejected whole.

Columns (case-insensitive, surrounding spaces ignored): a time column named date,
datetime, timestamp or time; open, high, low, close (also o/h/l/c); volume (also vol/v;
optional, 0 when absent). Other columns are ignored. Times are ISO 8601 (``2024-01-02``,
``2024-01-02 14:30``, ``2024-01-02T14:30:00-05:00``); times without an offset are UTC.
Errors name the file, the line (the header is line 1) and the column.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import pandas as pd

from marketdata.money import as_decimal
from marketdata.providers.base import Provider, Quote, UnknownSymbol, clip_range
from marketdata.validation import BarDataError, validate_bars

TIME_NAMES = ("timestamp", "datetime", "date", "time", "date_time")
ALIASES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last"),
    "volume": ("volume", "vol", "v"),
}


class CsvError(BarDataError):
    """A CSV that cannot be imported; nothing of it was stored."""


def _normalise(name: str) -> str:
    return "_".join(str(name).strip().strip('"').lower().split())


def _pick(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def read_bars_csv(source: str | Path | IO[str], timeframe: str, name: str | None = None) -> pd.DataFrame:
    """Parse and validate a bars CSV; raise CsvError naming the line and column of the first defect."""
    label = name or (Path(source).name if isinstance(source, str | Path) else "CSV")
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise CsvError(f"{label}: file not found") from None
    except pd.errors.EmptyDataError:
        raise CsvError(f"{label}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CsvError(f"{label}: not a readable CSV: {' '.join(str(exc).split())}") from None
    columns = {_normalise(c): c for c in raw.columns}
    time_col = _pick(columns, TIME_NAMES)
    picked = {field: _pick(columns, aliases) for field, aliases in ALIASES.items()}
    missing = [f for f, c in picked.items() if c is None and f != "volume"]
    if time_col is None:
        missing.insert(0, "date/datetime/timestamp")
    if missing:
        found = ", ".join(map(str, raw.columns))
        raise CsvError(f"{label}: line 1: missing column(s) {', '.join(missing)} (found: {found})")
    if raw.empty:
        raise CsvError(f"{label}: no data rows")

    def line(i: int) -> str:
        return f"{label}: line {i + 2}"

    text = raw[time_col].str.strip()
    times = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    if times.isna().any():  # a second chance for non-ISO spellings (e.g. 01/02/2024)
        retry = times.isna()
        times[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce", utc=True)
    bad = times.isna().to_numpy().nonzero()[0]
    if len(bad):
        i = int(bad[0])
        raise CsvError(f"{line(i)}, column {time_col}: cannot parse time {text.iloc[i]!r}")

    data: dict[str, list] = {}
    for field, column in picked.items():
        if column is None:
            data[field] = [0] * len(raw)
            continue
        values = []
        for i, cell in enumerate(raw[column].tolist()):
            cell = cell.strip()
            try:
                number = Decimal(cell)
            except InvalidOperation:
                what = "missing value" if not cell else f"not a number: {cell!r}"
                raise CsvError(f"{line(i)}, column {column}: {what}") from None
            if not number.is_finite():
                raise CsvError(f"{line(i)}, column {column}: not a number: {cell!r}")
            values.append(number)
        data[field] = values
    frame = pd.DataFrame(data, index=pd.DatetimeIndex(times, name="timestamp").as_unit("us"))
    try:
        return validate_bars(frame, timeframe, locate=lambda i, _f: line(i))
    except CsvError:
        raise
    except BarDataError as exc:
        raise CsvError(str(exc)) from None


def read_bars_csv_text(text: str, timeframe: str, name: str = "CSV") -> pd.DataFrame:
    return read_bars_csv(io.StringIO(text), timeframe, name)


class CsvProvider(Provider):
    """Bars from ``{directory}/{SYMBOL}_{timeframe}.csv`` files."""

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, symbol: str, timeframe: str) -> Path:
        return self.directory / f"{symbol.upper()}_{timeframe}.csv"

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        path = self.path(symbol, timeframe)
        if not path.is_file():
            raise UnknownSymbol(
                f"{self.name}: no file {path.name} for {symbol} {timeframe} in {self.directory}"
            )
        return clip_range(read_bars_csv(path, timeframe), start, end)

    def latest_quote(self, symbol: str) -> Quote:
        for timeframe in ("1min", "5min", "15min", "1h", "1day"):
            if self.path(symbol, timeframe).is_file():
                frame = self.fetch_bars(symbol, timeframe)
                return Quote(symbol.upper(), as_decimal(frame["close"].iloc[-1]), frame.index[-1], self.name)
        raise UnknownSymbol(f"{self.name}: no bars file for {symbol} in {self.directory}")
