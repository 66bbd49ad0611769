"""Market data operations: the idempotent bar ingest, the stock universe, imports and fetches."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from marketdata import pgcopy
from marketdata.bartime import drop_unclosed
from marketdata.indicators import CATALOGUE, IndicatorSpec, compute_one
from marketdata.models import Bar, Indicator, Stock
from marketdata.money import to_decimal
from marketdata.providers import Provider, get_provider
from marketdata.providers.csv import read_bars_csv
from marketdata.providers.sample import NAMES as SAMPLE_NAMES
from marketdata.providers.sample import SampleProvider
from marketdata.resample import resample_bars
from marketdata.selectors import bars_frame, last_bar_time
from marketdata.validation import BAR_COLUMNS, PRICE_COLUMNS, validate_bars

logger = logging.getLogger("marketdata")
PANDAS_TA_VERSION = importlib.metadata.version("pandas-ta")


@dataclass(frozen=True)
class IngestResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )

    def __str__(self) -> str:
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged"


@transaction.atomic
def ingest_bars(stock: Stock, timeframe: str, frame: pd.DataFrame) -> IngestResult:
    """Upsert ``frame`` (UTC index of open times; open, high, low, close, volume) as bars.

    The frame is validated first (BarDataError names the bar and column); nothing is
    stored unless all of it is valid. Running it twice changes nothing. Prices are stored
    exactly as given (strings and Decimals keep every digit; floats go through their
    shortest repr), rounded to NUMERIC(18, 6).
    """
    frame = validate_bars(frame, timeframe)
    if frame.empty:
        return IngestResult()
    if connection.vendor == "postgresql":
        inserted, updated = pgcopy.upsert_bars(stock.pk, timeframe, frame)
        return IngestResult(inserted, updated, len(frame) - inserted - updated)
    return _ingest_orm(stock, timeframe, frame)


def _ingest_orm(stock: Stock, timeframe: str, frame: pd.DataFrame) -> IngestResult:
    existing = {
        b.timestamp: b
        for b in Bar.objects.filter(
            stock=stock, timeframe=timeframe, timestamp__gte=frame.index[0], timestamp__lte=frame.index[-1]
        )
    }
    columns = [frame[c].tolist() for c in BAR_COLUMNS]
    to_create, to_update, unchanged = [], [], 0
    for ts, *row in zip(frame.index, *columns, strict=True):
        values = {k: to_decimal(v) for k, v in zip(PRICE_COLUMNS, row, strict=False)}
        values["volume"] = int(row[4])
        bar = existing.get(ts)
        if bar is None:
            to_create.append(Bar(stock=stock, timeframe=timeframe, timestamp=ts, **values))
        elif any(getattr(bar, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(bar, k, v)
            to_update.append(bar)
        else:
            unchanged += 1
    Bar.objects.bulk_create(to_create, batch_size=2000)
    Bar.objects.bulk_update(to_update, list(BAR_COLUMNS), batch_size=2000)
    return IngestResult(len(to_create), len(to_update), unchanged)


# --- the stock universe --------------------------------------------------------------------
SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-^/]{0,31}$")


def clean_symbol(symbol: str) -> str:
    """Upper-cased symbol, or ValueError saying why it is not one."""
    cleaned = str(symbol).strip().upper()
    if not SYMBOL_RE.match(cleaned):
        raise ValueError(f"invalid symbol {symbol!r}: use 1-32 letters, digits or . - ^ /")
    return cleaned


@transaction.atomic
def add_stocks(
    symbols: list[str], exchange: str = "", name: str = "", currency: str = "USD"
) -> list[tuple[Stock, bool]]:
    """Create (or re-activate) stocks; all symbols are checked before anything is written."""
    cleaned = [clean_symbol(s) for s in symbols]
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"invalid currency {currency!r}: expected a 3-letter code such as USD")
    out = []
    for symbol in dict.fromkeys(cleaned):
        stock, created = Stock.objects.get_or_create(
            symbol=symbol,
            exchange=exchange.strip().upper(),
            defaults={"name": name, "currency": currency.upper(), "active": True},
        )
        if not created and not stock.active:
            stock.active = True
            stock.save(update_fields=["active", "updated_at"])
        out.append((stock, created))
    return out


@transaction.atomic
def deactivate_stocks(symbols: list[str]) -> int:
    """Mark stocks inactive (their bars stay); unknown symbols are an error and change nothing."""
    cleaned = [clean_symbol(s) for s in symbols]
    known = set(Stock.objects.filter(symbol__in=cleaned).values_list("symbol", flat=True))
    unknown = [s for s in cleaned if s not in known]
    if unknown:
        raise Stock.DoesNotExist(f"unknown symbol(s): {', '.join(unknown)}")
    return Stock.objects.filter(symbol__in=cleaned, active=True).update(
        active=False, updated_at=timezone.now()
    )


# --- getting bars in -------------------------------------------------------------------------
def fetch_and_store(
    stock: Stock,
    timeframe: str,
    provider: Provider | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> IngestResult:
    """Fetch closed bars from the provider and ingest them.

    Without ``start`` it is incremental: from the newest stored bar (re-fetched, since a
    provider may correct it), or the provider's default range when nothing is stored.
    """
    provider = provider or get_provider()
    if start is None:
        start = last_bar_time(stock, timeframe)
    frame = provider.fetch_bars(stock.symbol, timeframe, start, end)
    result = ingest_bars(stock, timeframe, frame)
    logger.info("fetched %s %s from %s: %s", stock.symbol, timeframe, provider.name, result)
    return result


def import_csv(
    source: str | Path, symbol: str, timeframe: str, exchange: str | None = None, create: bool = False
) -> tuple[Stock, IngestResult]:
    """Import a bars CSV for ``symbol``: the whole file is validated before anything is stored."""
    frame = read_bars_csv(source, timeframe)
    with transaction.atomic():
        stocks = Stock.objects.filter(symbol=clean_symbol(symbol))
        if exchange is not None:
            stocks = stocks.filter(exchange=exchange.upper())
        stock = stocks.order_by("exchange").first()
        if stock is None:
            if not create:
                raise Stock.DoesNotExist(f"unknown symbol {symbol!r}; add it first or pass --create")
            stock = add_stocks([symbol], exchange=exchange or "")[0][0]
        return stock, ingest_bars(stock, timeframe, frame)


SAMPLE_EXCHANGE = "INDEX"


def load_sample(directory: Path | None = None) -> list[tuple[Stock, str, IngestResult]]:
    """Create the bundled sample's stocks (exchange INDEX) and load their bars idempotently.

    Every file is parsed and validated before anything is written, and all of it is
    stored in one transaction: a bad file leaves the database as it was.
    """
    provider = SampleProvider(directory)
    parsed = [
        (symbol, timeframe, read_bars_csv(path, timeframe)) for symbol, timeframe, path in provider.files()
    ]
    loaded = []
    with transaction.atomic():
        for symbol, timeframe, frame in parsed:
            stock, _ = Stock.objects.get_or_create(
                symbol=symbol,
                exchange=SAMPLE_EXCHANGE,
                defaults={"name": SAMPLE_NAMES.get(symbol, symbol), "currency": "USD"},
            )
            loaded.append((stock, timeframe, ingest_bars(stock, timeframe, frame)))
    return loaded


def resample_stored(
    stock: Stock, source: str, target: str, start: datetime | None = None, end: datetime | None = None
) -> IngestResult:
    """Build ``target`` bars from stored ``source`` bars and ingest the closed ones."""
    frame = bars_frame(stock, source, start, end)
    bars = resample_bars(frame, source, target)
    return ingest_bars(stock, target, drop_unclosed(bars, target))


# --- indicators ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndicatorStoreResult:
    spec: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def default_specs() -> list[IndicatorSpec]:
    """The whole catalogue with default parameters."""
    return [IndicatorSpec.of(name) for name in CATALOGUE]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _indicator_rows(
    frame: pd.DataFrame, spec: IndicatorSpec, start: datetime | None
) -> tuple[pd.DatetimeIndex, list[float], dict[str, list[float | None]]]:
    """The rows of one indicator to store: times, primary values, every output column."""
    out = compute_one(frame, spec)
    keep = np.zeros(len(out), dtype=bool)
    keep[spec.warmup :] = True  # warm-up rows are not values; they are not stored
    keep &= np.isfinite(out.iloc[:, 0].to_numpy())
    if start is not None:
        keep &= out.index >= pd.Timestamp(start)
    out = out[keep]
    columns = {name: [v if math.isfinite(v) else None for v in out[name].tolist()] for name in out.columns}
    return out.index, out.iloc[:, 0].tolist(), columns


def _json_rows(columns: dict[str, list[float | None]]) -> list[str]:
    """One JSON object per row, built by string joins (json.dumps per row is 3x slower).

    Keys are sorted like ``_json`` sorts them, so the text is the same either way.
    """
    parts = []
    for name in sorted(columns):
        key = json.dumps(name) + ":"
        parts.append([key + ("null" if v is None else repr(v)) for v in columns[name]])
    return ["{" + ",".join(row) + "}" for row in zip(*parts, strict=True)]


def store_indicators(
    stock: Stock,
    timeframe: str,
    specs: list[IndicatorSpec] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[IndicatorStoreResult]:
    """Compute ``specs`` over the stored bars and upsert their values in ``indicators``.

    Indicators are computed over the whole history up to ``end`` (so warm-up is right),
    stored from ``start``; running it twice changes nothing. Each row's metadata records
    the pandas-ta version, the parameters and the output columns.
    """
    specs = specs or default_specs()
    frame = bars_frame(stock, timeframe, None, end)
    results = []
    with transaction.atomic():
        for spec in specs:
            times, values, columns = _indicator_rows(frame, spec, start)
            parameters = spec.kwargs
            metadata = {
                "pandas_ta": PANDAS_TA_VERSION,
                "parameters": parameters,
                "columns": spec.columns,
                "warmup": spec.warmup,
            }
            if connection.vendor == "postgresql":
                inserted, updated = pgcopy.upsert_indicator_rows(
                    stock.pk,
                    timeframe,
                    spec.name,
                    spec.params_key,
                    _json(parameters),
                    _json(metadata),
                    times,
                    values,
                    _json_rows(columns),
                )
            else:
                inserted, updated = _store_indicators_orm(
                    stock, timeframe, spec, parameters, metadata, times, values, columns
                )
            results.append(IndicatorStoreResult(spec.key, inserted, updated, len(times) - inserted - updated))
    return results


def _store_indicators_orm(
    stock, timeframe, spec, parameters, metadata, times, values, columns
) -> tuple[int, int]:
    if not len(times):
        return 0, 0
    existing = {
        row.timestamp: row
        for row in Indicator.objects.filter(
            stock=stock,
            timeframe=timeframe,
            name=spec.name,
            params_key=spec.params_key,
            timestamp__gte=times[0],
            timestamp__lte=times[-1],
        )
    }
    to_create, to_update = [], []
    records = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    for ts, value, record in zip(times, values, records, strict=True):
        row = existing.get(ts)
        fields = {"parameters": parameters, "value": value, "values": record, "metadata": metadata}
        if row is None:
            to_create.append(
                Indicator(
                    stock=stock,
                    timeframe=timeframe,
                    timestamp=ts,
                    name=spec.name,
                    params_key=spec.params_key,
                    **fields,
                )
            )
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            to_update.append(row)
    Indicator.objects.bulk_create(to_create, batch_size=2000)
    Indicator.objects.bulk_update(to_update, ["parameters", "value", "values", "metadata"], batch_size=2000)
    return len(to_create), len(to_update)
