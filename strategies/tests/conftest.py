"""Fixtures: stocks with stored bars, API clients."""

import pytest
from rest_framework.test import APIClient

from marketdata.models import Stock
from marketdata.services import ingest_bars
from strategies.tests.helpers import random_bars


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The trader/viewer fixtures hash passwords; PBKDF2 would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def stored_bars(db):
    """Two stocks, AAA and BBB, with 400 daily bars each (rounded to cents)."""
    stocks = {}
    for i, symbol in enumerate(["AAA", "BBB"]):
        stock = Stock.objects.create(symbol=symbol, exchange="TEST", name=f"{symbol} Inc")
        bars = random_bars(400, seed=10 + i, vol=0.015).round(2)
        ingest_bars(stock, "1day", bars)
        stocks[symbol] = stock
    return stocks


@pytest.fixture
def trader_client(trader):
    client = APIClient()
    client.force_authenticate(trader)
    return client


@pytest.fixture
def viewer_client(viewer):
    client = APIClient()
    client.force_authenticate(viewer)
    return client
