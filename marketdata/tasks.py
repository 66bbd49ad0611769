"""Background work for market data (django.tasks): fetching a symbol's bars now."""

from __future__ import annotations

from django.tasks import task

from marketdata.models import Stock
from marketdata.providers import ProviderError
from marketdata.services import fetch_and_store
from marketdata.validation import BarDataError


@task()
def fetch_stock_bars(stock_id: int, timeframe: str, start: str | None = None, end: str | None = None) -> dict:
    """Fetch and ingest one stock's bars; the outcome is journalled as a StrategyEvent."""
    from strategies.events import record_event

    stock = Stock.objects.get(pk=stock_id)
    try:
        result = fetch_and_store(stock, timeframe, start=start, end=end)
    except (ProviderError, BarDataError) as exc:
        record_event(
            "marketdata.fetch_failed",
            f"{stock.symbol} {timeframe}: {exc}",
            severity="error",
            symbol=stock.symbol,
            timeframe=timeframe,
        )
        return {"ok": False, "error": str(exc)}
    summary = {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}
    record_event(
        "marketdata.fetched",
        f"{stock.symbol} {timeframe}: {result}",
        symbol=stock.symbol,
        timeframe=timeframe,
        **summary,
    )
    return {"ok": True, **summary}
