"""Background work for market data (django.tasks): fetching a symbol's bars now."""

from __future__ import annotations

from django.tasks import task

from marketdata.models import Stock
from marketdata.providers import ProviderError
from marketdata.services import fetch_and_store
from marketdata.signals import bars_fetch_failed, bars_fetched
from marketdata.validation import BarDataError


@task()
def fetch_stock_bars(stock_id: int, timeframe: str, start: str | None = None, end: str | None = None) -> dict:
    """Fetch and ingest one stock's bars; the outcome is sent as ``bars_fetched`` or
    ``bars_fetch_failed`` (``strategies`` journals both)."""
    stock = Stock.objects.get(pk=stock_id)
    try:
        result = fetch_and_store(stock, timeframe, start=start, end=end)
    except (ProviderError, BarDataError) as exc:
        bars_fetch_failed.send(sender=Stock, stock=stock, timeframe=timeframe, error=exc)
        return {"ok": False, "error": str(exc)}
    summary = {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}
    bars_fetched.send(sender=Stock, stock=stock, timeframe=timeframe, result=result)
    return {"ok": True, **summary}
