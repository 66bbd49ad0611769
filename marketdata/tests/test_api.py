from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from marketdata.indicators import IndicatorSpec
from marketdata.models import Bar, Indicator, Stock
from marketdata.providers.sample import synthetic_bars
from marketdata.services import ingest_bars, store_indicators

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(trader):
    client = APIClient()
    client.force_authenticate(trader)
    return client


@pytest.fixture
def reader(viewer):
    client = APIClient()
    client.force_authenticate(viewer)
    return client


def test_stock_crud(api):
    created = api.post(
        "/api/stocks/", {"symbol": " aapl ", "exchange": "nasdaq", "name": "Apple"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["symbol"] == "AAPL" and created.json()["exchange"] == "NASDAQ"
    pk = created.json()["id"]
    assert api.patch(f"/api/stocks/{pk}/", {"active": False}, format="json").json()["active"] is False
    assert api.get("/api/stocks/?active=false").json()["count"] == 1
    duplicate = api.post("/api/stocks/", {"symbol": "AAPL", "exchange": "NASDAQ"}, format="json")
    assert duplicate.status_code == 400
    assert api.delete(f"/api/stocks/{pk}/").status_code == 204
    assert not Stock.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"symbol": "BAD SYMBOL"}, "symbol"),
        ({"symbol": "X", "currency": "dollars"}, "currency"),
        ({}, "symbol"),
    ],
)
def test_bad_stock_payloads_name_the_field(api, payload, field):
    response = api.post("/api/stocks/", payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Stock.objects.exists()


def test_readers_cannot_write(reader):
    assert reader.get("/api/stocks/").status_code == 200
    assert reader.post("/api/stocks/", {"symbol": "AAPL"}, format="json").status_code == 403
    assert APIClient().get("/api/stocks/").status_code in (401, 403)


def test_bars_and_indicators_filters(api):
    stock = Stock.objects.create(symbol="AAPL")
    frame = synthetic_bars("AAPL", 60)
    ingest_bars(stock, "1min", frame)
    ingest_bars(Stock.objects.create(symbol="MSFT"), "1min", synthetic_bars("MSFT", 5))
    body = api.get(
        "/api/bars/",
        {"symbol": "aapl", "timeframe": "1min", "from": "2024-01-02T14:40:00Z", "to": "2024-01-02T14:49:00Z"},
    ).json()
    assert body["count"] == 10 and body["results"][0]["timestamp"] == "2024-01-02T14:40:00Z"
    assert Decimal(body["results"][0]["close"]) == Decimal(repr(float(frame["close"].iloc[10])))
    assert api.get("/api/bars/", {"from": "not-a-date"}).status_code == 400
    assert api.get("/api/bars/", {"timeframe": "7min"}).status_code == 400
    store_indicators(stock, "1min", [IndicatorSpec.of("sma", length=5), IndicatorSpec.of("rsi")])
    sma = api.get(
        "/api/indicators/", {"symbol": "AAPL", "name": "SMA", "from": "2024-01-02T15:00:00Z"}
    ).json()
    assert (
        sma["count"]
        == Indicator.objects.filter(name="sma", timestamp__gte="2024-01-02T15:00:00Z").count()
        > 0
    )
    assert sma["results"][0]["params_key"] == "length=5"


def test_fetch_now_action(api):
    stock = Stock.objects.create(symbol="AAPL")
    response = api.post(
        f"/api/stocks/{stock.pk}/fetch/",
        {"timeframe": "15min", "start": "2024-01-02T00:00:00Z", "end": "2024-01-02T23:00:00Z"},
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "SUCCESSFUL" and body["result"] == {
        "ok": True,
        "inserted": 26,
        "updated": 0,
        "unchanged": 0,
    }
    assert Bar.objects.filter(stock=stock, timeframe="15min").count() == 26
    from strategies.models import StrategyEvent

    assert StrategyEvent.objects.filter(event_type="marketdata.fetched").exists()
    failed = api.post(f"/api/stocks/{stock.pk}/fetch/", {"timeframe": "1day"}, format="json").json()
    assert failed["result"]["ok"] is False and "no 1day bars" in failed["result"]["error"]
    assert StrategyEvent.objects.filter(event_type="marketdata.fetch_failed", severity="error").exists()
    bad = api.post(f"/api/stocks/{stock.pk}/fetch/", {"timeframe": "2min"}, format="json")
    assert bad.status_code == 400 and "timeframe" in bad.json()
    order = api.post(
        f"/api/stocks/{stock.pk}/fetch/",
        {"start": "2024-01-03T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
        format="json",
    )
    assert order.status_code == 400 and "start" in order.json()


def test_deleting_a_traded_stock_is_a_conflict(api, monkeypatch):
    from django.db.models import ProtectedError

    stock = Stock.objects.create(symbol="AAPL")

    def protected(self, *args, **kwargs):
        raise ProtectedError("has trades", set())

    monkeypatch.setattr(Stock, "delete", protected)
    response = api.delete(f"/api/stocks/{stock.pk}/")
    assert response.status_code == 409 and "deactivate it instead" in response.json()["detail"]
