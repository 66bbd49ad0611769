"""Market data operations: the idempotent bar ingest."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.db import transaction

from marketdata.models import Bar, Stock


@dataclass(frozen=True)
class IngestResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def _decimal(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@transaction.atomic
def ingest_bars(stock: Stock, timeframe: str, frame: pd.DataFrame) -> IngestResult:
    """Upsert ``frame`` (UTC index of open times; open, high, low, close, volume) as bars.

    Running it twice changes nothing. Prices are stored exactly as given (strings and
    Decimals keep every digit; floats go through their shortest repr).
    """
    existing = {
        b.timestamp: b
        for b in Bar.objects.filter(stock=stock, timeframe=timeframe, timestamp__in=list(frame.index))
    }
    to_create, to_update, unchanged = [], [], 0
    for ts, row in frame.iterrows():
        values = {
            "open": _decimal(row["open"]),
            "high": _decimal(row["high"]),
            "low": _decimal(row["low"]),
            "close": _decimal(row["close"]),
            "volume": int(row["volume"]),
        }
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
    Bar.objects.bulk_update(to_update, ["open", "high", "low", "close", "volume"], batch_size=2000)
    return IngestResult(len(to_create), len(to_update), unchanged)
