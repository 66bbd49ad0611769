"""Fixtures for the execution tests: a stock, a strategy, a connected paper broker."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from execution.brokers.paper import PaperBroker
from execution.costs import CostModel
from marketdata.models import Stock
from strategies.models import Strategy

# The backtest tests use the strategies tests' stocks with stored bars and API clients.
from strategies.tests.conftest import (  # noqa: F401
    fast_password_hashing,
    stored_bars,
    trader_client,
    viewer_client,
)

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def bar(day: int, o, h, low, c) -> dict:
    return {
        "timestamp": T0 + timedelta(days=day),
        "open": Decimal(str(o)),
        "high": Decimal(str(h)),
        "low": Decimal(str(low)),
        "close": Decimal(str(c)),
    }


@pytest.fixture
def stock(db):
    return Stock.objects.create(symbol="AAPL", exchange="NASDAQ")


@pytest.fixture
def strategy(db, stock):
    s = Strategy.objects.create(name="demo", strategy_class="sma_crossover", active=True)
    s.stocks.add(stock)
    return s


@pytest.fixture
def broker(db):
    b = PaperBroker(starting_cash=Decimal("10000"), cost_model=CostModel(commission="none", slippage_bps=0))
    b.connect()
    b.poll_events()
    return b
