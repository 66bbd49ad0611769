"""The journal's receivers for what marketdata reports (connected in ``StrategiesConfig.ready()``)."""

from __future__ import annotations

from typing import Any

from marketdata.models import Stock
from marketdata.services import IngestResult
from strategies.events import record_event


def journal_bars_fetched(
    sender: Any, stock: Stock, timeframe: str, result: IngestResult, **kwargs: Any
) -> None:
    record_event(
        "marketdata.fetched",
        f"{stock.symbol} {timeframe}: {result}",
        symbol=stock.symbol,
        timeframe=timeframe,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
    )


def journal_bars_fetch_failed(
    sender: Any, stock: Stock, timeframe: str, error: Exception, **kwargs: Any
) -> None:
    record_event(
        "marketdata.fetch_failed",
        f"{stock.symbol} {timeframe}: {error}",
        severity="error",
        symbol=stock.symbol,
        timeframe=timeframe,
    )
