"""Twelve Data faked at the HTTP boundary with responses in the real API's shape."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from marketdata.providers.limiter import CreditLimiter
from marketdata.providers.twelvedata import (
    InvalidApiKey,
    MalformedResponse,
    RateLimited,
    ServerError,
    SymbolNotFound,
    TwelveDataClient,
    TwelveDataError,
    TwelveDataProvider,
    parse_time_series,
)

BASE = "https://api.twelvedata.com"
KEY = "sekrit-key-123"
META = {
    "symbol": "AAPL",
    "interval": "1min",
    "currency": "USD",
    "exchange_timezone": "America/New_York",
    "exchange": "NASDAQ",
    "mic_code": "XNGS",
    "type": "Common Stock",
}


def values(*rows):
    return [
        {"datetime": d, "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for d, o, h, lo, c, v in rows
    ]


SERIES = {
    "meta": META,
    "values": values(  # newest first, exchange local time, numbers as strings
        ("2024-01-02 09:32:00", "185.50000", "185.90000", "185.40000", "185.81000", "30500"),
        ("2024-01-02 09:31:00", "185.20000", "185.60000", "185.10000", "185.50000", "41000"),
        ("2024-01-02 09:30:00", "187.15000", "187.30100", "185.10001", "185.20000", "1200345"),
    ),
    "status": "ok",
}
ERRORS = {
    "invalid_key": {
        "code": 401,
        "message": "**apikey** parameter is incorrect or not specified. You can get your free API key "
        "instantly following this link: https://twelvedata.com/pricing. If you believe that everything "
        "is correct, you can contact us at https://twelvedata.com/contact/customer",
        "status": "error",
    },
    "unknown_symbol": {
        "code": 404,
        "message": "**symbol** not found: NOPE. Please specify it correctly according to API Reference.",
        "status": "error",
    },
    "rate_limit": {
        "code": 429,
        "message": "You have run out of API credits for the current minute. 9 API credits were used, "
        "with the current limit being 8. Wait for the next minute or consider switching to a higher tier "
        "plan at https://twelvedata.com/pricing",
        "status": "error",
    },
    "no_data": {
        "code": 400,
        "message": "No data is available on the specified dates. Try setting different start/end dates.",
        "status": "error",
    },
}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(sleeps):
    limiter = CreditLimiter(1000, 100000, clock=lambda: 0.0, sleep=sleeps)
    return TwelveDataClient(KEY, BASE, limiter=limiter, retries=2, backoff=0.5, sleep=sleeps)


@responses.activate
def test_time_series_is_ordered_utc_and_exact(client):
    responses.get(
        f"{BASE}/time_series",
        json=SERIES,
        match=[
            matchers.query_param_matcher(
                {"symbol": "AAPL", "interval": "1min", "outputsize": "5000", "apikey": KEY}
            )
        ],
    )
    frame = client.time_series("AAPL", "1min")
    assert list(frame.index.strftime("%Y-%m-%d %H:%M%z")) == [
        "2024-01-02 14:30+0000",
        "2024-01-02 14:31+0000",
        "2024-01-02 14:32+0000",
    ]
    assert frame["low"].iloc[0] == Decimal("185.10001") and isinstance(frame["high"].iloc[0], Decimal)
    assert frame["volume"].tolist() == [1200345, 41000, 30500]


@responses.activate
def test_daily_values_are_keyed_by_session_date_and_volume_may_be_missing(client):
    body = {
        "meta": {**META, "interval": "1day", "symbol": "SPX"},
        "values": [{"datetime": "2024-01-03", "open": "1", "high": "2", "low": "0.5", "close": "1.5"}],
        "status": "ok",
    }
    responses.get(f"{BASE}/time_series", json=body)
    frame = client.time_series(
        "SPX", "1day", start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 5)
    )
    assert frame.index[0] == datetime(2024, 1, 3, tzinfo=UTC) and frame["volume"].iloc[0] == 0
    sent = responses.calls[0].request.url
    assert "start_date=2024-01-01" in sent and "end_date=2024-01-05" in sent


@responses.activate
def test_long_ranges_are_fetched_in_pages(client, monkeypatch):
    monkeypatch.setattr("marketdata.providers.twelvedata.MAX_OUTPUTSIZE", 2)
    page1 = {"meta": META, "values": SERIES["values"][:2], "status": "ok"}
    page2 = {"meta": META, "values": SERIES["values"][1:], "status": "ok"}  # overlaps by one bar
    responses.get(f"{BASE}/time_series", json=page1)
    responses.get(f"{BASE}/time_series", json=page2)
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    frame = client.bars("AAPL", "1min", start, datetime(2024, 1, 2, 14, 32, tzinfo=UTC))
    assert len(frame) == 3 and frame.index.is_monotonic_increasing and frame.index.is_unique
    assert len(responses.calls) == 2
    second = responses.calls[1].request.url
    assert "end_date=2024-01-02+09%3A30%3A59" in second  # local exchange time, one second before the oldest


@responses.activate
def test_paging_stops_without_progress_and_without_start(client, monkeypatch):
    monkeypatch.setattr("marketdata.providers.twelvedata.MAX_OUTPUTSIZE", 3)
    responses.get(f"{BASE}/time_series", json=SERIES)
    assert len(client.bars("AAPL", "1min")) == 3 and len(responses.calls) == 1
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert len(client.bars("AAPL", "1min", start)) == 3  # same page again: stop
    assert len(responses.calls) == 3


@responses.activate
def test_no_data_is_an_empty_frame(client):
    responses.get(f"{BASE}/time_series", json=ERRORS["no_data"])
    assert client.bars("AAPL", "1min", datetime(2020, 1, 1, tzinfo=UTC)).empty


@pytest.mark.parametrize(
    ("body", "status", "error", "text"),
    [
        (ERRORS["invalid_key"], 200, InvalidApiKey, "apikey parameter is incorrect"),
        (ERRORS["invalid_key"], 401, InvalidApiKey, "(code 401)"),
        (ERRORS["unknown_symbol"], 200, SymbolNotFound, "symbol not found: NOPE"),
        (
            {"code": 400, "message": "**interval** is wrong", "status": "error"},
            200,
            TwelveDataError,
            "interval",
        ),
    ],
)
@responses.activate
def test_errors_become_typed_one_line_errors(client, body, status, error, text):
    responses.get(f"{BASE}/time_series", json=body, status=status)
    with pytest.raises(error) as info:
        client.time_series("NOPE", "1min")
    message = str(info.value)
    assert text in message and "\n" not in message and KEY not in message
    assert message.startswith("Twelve Data time_series NOPE:")
    assert len(responses.calls) == 1  # not retried


@responses.activate
def test_rate_limit_and_server_errors_are_retried_with_backoff(client, sleeps):
    responses.get(f"{BASE}/time_series", json=ERRORS["rate_limit"], status=429)
    responses.get(f"{BASE}/time_series", body="<html>Bad gateway</html>", status=502)
    responses.get(f"{BASE}/time_series", json=SERIES)
    assert len(client.time_series("AAPL", "1min")) == 3
    assert sleeps == [60.0, 1.0]  # rate limit waits for the next minute, then 0.5 * 2**1


@responses.activate
def test_retries_give_up_with_the_last_error(client, sleeps):
    responses.get(f"{BASE}/time_series", json={"code": 500, "message": "Internal error", "status": "error"})
    with pytest.raises(ServerError, match="Internal error"):
        client.time_series("AAPL", "1min")
    assert len(responses.calls) == 3 and sleeps == [0.5, 1.0]
    responses.replace(responses.GET, f"{BASE}/time_series", json=ERRORS["rate_limit"], status=429)
    with pytest.raises(RateLimited, match="run out of API credits"):
        client.time_series("AAPL", "1min")
    responses.replace(responses.GET, f"{BASE}/time_series", body="", status=429)
    with pytest.raises(RateLimited, match="HTTP 429"):
        client.time_series("AAPL", "1min")


@responses.activate
def test_network_errors_are_retried_and_redacted(client):
    responses.get(f"{BASE}/time_series", body=requests.ConnectionError(f"refused for {BASE}?apikey={KEY}"))
    with pytest.raises(ServerError, match="network error") as info:
        client.time_series("AAPL", "1min")
    assert KEY not in str(info.value) and "apikey=***" in str(info.value)
    assert len(responses.calls) == 3


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("not json at all", "not a JSON object (HTTP 200): 'not json at all'"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"status": "ok"}), "no meta/values"),
        (json.dumps({"meta": META, "values": [{"open": "1"}], "status": "ok"}), "value #0 has no datetime"),
        (
            json.dumps({**SERIES, "values": [{**SERIES["values"][0], "high": "n/a"}]}),
            "field high: not a number",
        ),
        (
            json.dumps({**SERIES, "values": [{**SERIES["values"][0], "low": "Infinity"}]}),
            "not a finite number",
        ),
        (json.dumps({**SERIES, "values": [{"datetime": "2024-01-02", "open": "1"}]}), "has no high"),
        (json.dumps({**SERIES, "values": [{**SERIES["values"][0], "datetime": "soon"}]}), "bad datetime"),
        (json.dumps({**SERIES, "meta": {**META, "exchange_timezone": "Mars/Base"}}), "time zone"),
    ],
)
@responses.activate
def test_malformed_bodies(client, body, text):
    responses.get(f"{BASE}/time_series", body=body)
    with pytest.raises(MalformedResponse) as info:
        client.time_series("AAPL", "1min")
    assert text in str(info.value)


@responses.activate
def test_price_and_quote(client):
    responses.get(f"{BASE}/price", json={"price": "189.98000"})
    responses.get(
        f"{BASE}/quote",
        json={
            "symbol": "AAPL",
            "name": "Apple Inc",
            "close": "189.98000",
            "volume": "123",
            "is_market_open": False,
        },
    )
    assert client.price("AAPL") == Decimal("189.98")
    quote = client.quote("AAPL")
    assert quote["close"] == Decimal("189.98000") and quote["name"] == "Apple Inc"
    responses.get(f"{BASE}/price", json={"nope": 1})
    responses.get(f"{BASE}/quote", json={"nope": 1})
    with pytest.raises(MalformedResponse):
        client.price("AAPL")
    with pytest.raises(MalformedResponse):
        client.quote("AAPL")


def test_client_needs_a_key_and_a_known_interval(client):
    with pytest.raises(InvalidApiKey, match="TWELVE_DATA_API_KEY"):
        TwelveDataClient("")
    with pytest.raises(TwelveDataError, match="unsupported interval"):
        client.time_series("AAPL", "3min")


@responses.activate
def test_provider_drops_the_still_forming_bar(client):
    responses.get(f"{BASE}/time_series", json=SERIES)
    responses.get(f"{BASE}/price", json={"price": "185.9"})
    now = datetime(2024, 1, 2, 14, 32, 30, tzinfo=UTC)  # the 14:32 bar is still forming
    provider = TwelveDataProvider(client, clock=lambda: now)
    frame = provider.fetch_bars("AAPL", "1min", datetime(2024, 1, 2, tzinfo=UTC))
    assert list(frame.index.strftime("%H:%M")) == ["14:30", "14:31"]
    quote = provider.latest_quote("AAPL")
    assert quote.price == Decimal("185.9") and quote.timestamp == now


def test_parse_empty_values():
    frame, tz = parse_time_series({"meta": META, "values": []}, "AAPL", "1min")
    assert frame.empty and tz == "America/New_York"


def test_provider_from_settings(settings):
    settings.TWELVE_DATA_API_KEY = KEY
    provider = TwelveDataProvider()
    assert (
        provider.client.api_key == KEY
        and provider.client.limiter.per_minute == settings.TWELVE_DATA_CREDITS_PER_MINUTE
    )


@pytest.mark.django_db
@responses.activate
def test_fetch_and_store_from_twelve_data_is_exact_and_incremental(client):
    from marketdata.models import Bar, Stock
    from marketdata.services import fetch_and_store

    stock = Stock.objects.create(symbol="AAPL", exchange="NASDAQ")
    provider = TwelveDataProvider(client, clock=lambda: datetime(2024, 1, 3, tzinfo=UTC))
    responses.get(f"{BASE}/time_series", json=SERIES)
    assert fetch_and_store(stock, "1min", provider).inserted == 3
    assert Bar.objects.get(stock=stock, timestamp=datetime(2024, 1, 2, 14, 30, tzinfo=UTC)).low == Decimal(
        "185.10001"
    )
    result = fetch_and_store(stock, "1min", provider)  # from the last stored bar
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)  # bars before it are clipped
    assert "start_date=2024-01-02+09%3A32%3A00" in responses.calls[1].request.url
