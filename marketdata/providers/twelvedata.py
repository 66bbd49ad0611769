"""Twelve Data over its REST API (requests): time series, quote and price.

Numbers arrive as strings and are parsed exactly (Decimal); values arrive newest first
and in the exchange's time zone, and leave oldest first in UTC. Error bodies, including
``"status": "error"`` inside an HTTP 200, become typed errors with a one-line message;
rate limits, server errors and network failures are retried with backoff. Every request
first takes its credit from the limiter. The API key never appears in a message: URLs go
through ``config.logging.redact``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import requests
from django.conf import settings
from django.utils import timezone

from config.logging import redact
from marketdata.bartime import drop_unclosed
from marketdata.providers.base import (
    Provider,
    ProviderError,
    Quote,
    UnknownSymbol,
    clip_range,
    empty_bars,
    utc,
)
from marketdata.providers.limiter import CreditLimiter, shared_limiter
from marketdata.timeframes import Timeframe, is_intraday, offset

logger = logging.getLogger("marketdata.twelvedata")

INTERVALS = frozenset(Timeframe.values)  # our timeframe names are Twelve Data's intervals
MAX_OUTPUTSIZE = 5000
DEFAULT_TZ = "America/New_York"  # until the first response tells us the exchange's zone


class TwelveDataError(ProviderError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidApiKey(TwelveDataError):
    pass


class SymbolNotFound(TwelveDataError, UnknownSymbol):
    pass


class RateLimited(TwelveDataError):
    pass


class ServerError(TwelveDataError):
    pass


class MalformedResponse(TwelveDataError):
    pass


class NoData(TwelveDataError):
    """No bars in the requested range (an empty result, not a failure)."""


RETRYABLE = (RateLimited, ServerError)


def _one_line(text: str, limit: int = 200) -> str:
    # Twelve Data writes **apikey**-style markdown; keep the word, drop the stars.
    line = " ".join(re.sub(r"\*\*(\w+)\*\*", r"\1", str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_for(status: int, message: str) -> type[TwelveDataError]:
    lowered = message.lower()
    if status in (401, 403) or "apikey" in lowered or "api key" in lowered:
        return InvalidApiKey
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    if "no data is available" in lowered:
        return NoData
    if status == 404 or ("symbol" in lowered and ("not found" in lowered or "invalid" in lowered)):
        return SymbolNotFound
    return TwelveDataError


def _decimal(value: Any, where: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MalformedResponse(f"{where}: not a number: {value!r}") from None
    if not number.is_finite():
        raise MalformedResponse(f"{where}: not a finite number: {value!r}")
    return number


def parse_time_series(body: dict, symbol: str, interval: str) -> tuple[pd.DataFrame, str]:
    """The ``values`` of a time_series body as bars (oldest first, UTC) and the exchange zone."""
    where = f"Twelve Data time_series {symbol} {interval}"
    meta, values = body.get("meta"), body.get("values")
    if not isinstance(meta, dict) or not isinstance(values, list):
        raise MalformedResponse(f"{where}: response has no meta/values")
    tz = meta.get("exchange_timezone") or "UTC"
    rows: dict[str, list] = {k: [] for k in ("datetime", "open", "high", "low", "close", "volume")}
    for i, value in enumerate(values):
        if not isinstance(value, dict) or "datetime" not in value:
            raise MalformedResponse(f"{where}: value #{i} has no datetime")
        stamp = value["datetime"]
        rows["datetime"].append(stamp)
        for field in ("open", "high", "low", "close"):
            if field not in value:
                raise MalformedResponse(f"{where}: value at {stamp} has no {field}")
            rows[field].append(_decimal(value[field], f"{where}: value at {stamp}, field {field}"))
        volume = _decimal(value.get("volume", "0"), f"{where}: value at {stamp}, field volume")
        rows["volume"].append(int(volume))
    if not values:
        return empty_bars(), tz
    try:
        local = pd.DatetimeIndex(pd.to_datetime(rows.pop("datetime"), format="ISO8601"))
        if is_intraday(interval):
            index = local.tz_localize(tz).tz_convert("UTC")
        else:  # daily and longer bars are keyed by their date at 00:00 UTC
            index = local.normalize().tz_localize("UTC")
    except (ValueError, TypeError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise MalformedResponse(f"{where}: bad datetime or time zone {tz!r}: {_one_line(str(exc))}") from None
    frame = pd.DataFrame(rows, index=index.rename("timestamp").as_unit("us"))
    frame["volume"] = frame["volume"].astype("int64")
    return frame.sort_index(), tz  # the API sends newest first


class TwelveDataClient:
    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.twelvedata.com",
        timeout: float = 20.0,
        limiter: CreditLimiter | None = None,
        session: requests.Session | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        rate_limit_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise InvalidApiKey("Twelve Data: TWELVE_DATA_API_KEY is not set")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.limiter = limiter or CreditLimiter(8, 800)
        self.session = session or requests.Session()
        self.retries = retries
        self.backoff = backoff
        self.rate_limit_wait = rate_limit_wait
        self.sleep = sleep
        self._zones: dict[str, str] = {}

    def _redact(self, text: str) -> str:
        return redact(text, (self.api_key,))

    def request(self, endpoint: str, *, credits: int = 1, **params: Any) -> dict:
        """GET ``endpoint`` with ``params``; the decoded JSON body, or a typed error.

        ``credits``: what the request costs (a batched request, one per symbol)."""
        query = {k: v for k, v in params.items() if v is not None}
        label = f"Twelve Data {endpoint} {query.get('symbol', '')}".rstrip()
        query["apikey"] = self.api_key
        url = f"{self.base_url}/{endpoint}"
        for attempt in range(self.retries + 1):
            self.limiter.acquire(credits)
            try:
                response = self.session.get(url, params=query, timeout=self.timeout)
                body = self._check(label, response)
                return body
            except (requests.ConnectionError, requests.Timeout) as exc:
                error: TwelveDataError = ServerError(
                    f"{label}: network error: {_one_line(self._redact(str(exc)))}"
                )
            except RETRYABLE as exc:
                error = exc
            if attempt == self.retries:
                raise error
            delay = self.backoff * 2**attempt
            if isinstance(error, RateLimited):
                delay = max(delay, self.rate_limit_wait)
            logger.warning("%s (retry %d/%d in %.1fs)", error, attempt + 1, self.retries, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, label: str, response: requests.Response) -> dict:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status >= 500:
                raise ServerError(f"{label}: server error (HTTP {status})", status)
            if status == 429:
                raise RateLimited(f"{label}: rate limited (HTTP 429)", status)
            snippet = _one_line(self._redact(response.text), 80)
            raise MalformedResponse(
                f"{label}: response is not a JSON object (HTTP {status}): {snippet!r}", status
            )
        if body.get("status") == "error" or status >= 400:
            code = body.get("code") if isinstance(body.get("code"), int) else status
            message = _one_line(self._redact(str(body.get("message") or f"HTTP {status}")))
            raise _error_for(code, message)(f"{label}: {message} (code {code})", code)
        return body

    def time_series(
        self,
        symbol: str,
        interval: str,
        start: datetime | None = None,
        end: datetime | None = None,
        outputsize: int = MAX_OUTPUTSIZE,
    ) -> pd.DataFrame:
        """One page: at most ``outputsize`` of the newest bars in [start, end]."""
        if interval not in INTERVALS:
            raise TwelveDataError(
                f"Twelve Data: unsupported interval {interval!r}; use one of {sorted(INTERVALS)}"
            )
        zone = self._zones.get(symbol, DEFAULT_TZ)
        try:
            body = self.request(
                "time_series",
                symbol=symbol,
                interval=interval,
                outputsize=min(outputsize, MAX_OUTPUTSIZE),
                start_date=self.format_date(start, interval, zone),
                end_date=self.format_date(end, interval, zone),
            )
        except NoData:
            return empty_bars()
        frame, zone = parse_time_series(body, symbol, interval)
        self._zones[symbol] = zone
        return frame

    @staticmethod
    def format_date(moment: datetime | None, interval: str, zone: str) -> str | None:
        """``moment`` as the API reads start_date/end_date: the exchange zone's wall time
        intraday, the UTC date for daily and longer bars."""
        if moment is None:
            return None
        ts = pd.Timestamp(moment)
        ts = ts.tz_localize("UTC") if ts.tz is None else ts
        if not is_intraday(interval):
            return ts.tz_convert("UTC").strftime("%Y-%m-%d")
        return ts.tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S")

    def bars(
        self, symbol: str, interval: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """All bars in [start, end], fetched in pages of 5,000 from the newest back.

        Without ``start`` only the newest page is fetched.
        """
        start_ts = utc(start) if start is not None else None
        # end_date may be exclusive on the API side: ask one bar further and clip.
        page_end = utc(end) + offset(interval) if end is not None else None
        pages: list[pd.DataFrame] = []
        while True:
            page = self.time_series(symbol, interval, start, page_end)
            if page.empty:
                break
            if pages and page.index[0] >= pages[-1].index[0]:
                break  # no progress: the API ignored end_date
            pages.append(page)
            oldest = page.index[0]
            if start_ts is None or len(page) < MAX_OUTPUTSIZE or oldest <= start_ts:
                break
            page_end = oldest - pd.Timedelta(seconds=1)
        if not pages:
            return empty_bars()
        frame = pd.concat(reversed(pages))
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        return clip_range(frame, start, end)

    def price(self, symbol: str) -> Decimal:
        body = self.request("price", symbol=symbol)
        if "price" not in body:
            raise MalformedResponse(f"Twelve Data price {symbol}: response has no price")
        return _decimal(body["price"], f"Twelve Data price {symbol}")

    def quote(self, symbol: str) -> dict:
        """The quote body with its numbers as Decimals."""
        body = self.request("quote", symbol=symbol)
        if "close" not in body:
            raise MalformedResponse(f"Twelve Data quote {symbol}: response has no close")
        numeric = ("open", "high", "low", "close", "previous_close", "change", "percent_change", "volume")
        return {
            k: (
                _decimal(v, f"Twelve Data quote {symbol}, field {k}") if k in numeric and v is not None else v
            )
            for k, v in body.items()
        }


class TwelveDataProvider(Provider):
    name = "twelvedata"
    credits_per_request = 1

    def __init__(self, client: TwelveDataClient | None = None, clock: Callable[[], datetime] = timezone.now):
        self.client = client or TwelveDataClient(
            settings.TWELVE_DATA_API_KEY,
            settings.TWELVE_DATA_BASE_URL,
            settings.TWELVE_DATA_TIMEOUT,
            limiter=shared_limiter(),
        )
        self.clock = clock

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        frame = self.client.bars(symbol, timeframe, start, end)
        # The newest bar may still be forming: it is never stored as final.
        return drop_unclosed(frame, timeframe, self.clock())

    def latest_quote(self, symbol: str) -> Quote:
        return Quote(symbol, self.client.price(symbol), self.clock(), self.name)
