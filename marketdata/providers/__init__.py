"""Market data providers behind one interface (see base.Provider)."""

from __future__ import annotations

from django.conf import settings

from marketdata.providers.base import Provider, ProviderError, Quote, UnknownSymbol
from marketdata.providers.csv import CsvProvider
from marketdata.providers.sample import SampleProvider
from marketdata.providers.twelvedata import TwelveDataProvider

__all__ = ["Provider", "ProviderError", "Quote", "UnknownSymbol", "get_provider", "PROVIDERS"]

PROVIDERS = ("sample", "twelvedata", "csv")


def get_provider(name: str | None = None) -> Provider:
    """The provider called ``name`` (default: settings.MARKETDATA_PROVIDER)."""
    name = (name or settings.MARKETDATA_PROVIDER).lower()
    if name == "sample":
        return SampleProvider()
    if name == "twelvedata":
        return TwelveDataProvider()
    if name == "csv":
        return CsvProvider(settings.MARKETDATA_CSV_DIR)
    raise ProviderError(f"unknown market data provider {name!r}; choose one of {', '.join(PROVIDERS)}")
