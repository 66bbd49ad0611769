from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from marketdata.models import Bar, Indicator, Stock

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bar(stock, **overrides):
    values = dict(
        stock=stock,
        timeframe="1min",
        timestamp=T0,
        open=Decimal("10"),
        high=Decimal("11"),
        low=Decimal("9"),
        close=Decimal("10.5"),
        volume=100,
    )
    values.update(overrides)
    return Bar(**values)


def test_stock_is_unique_per_symbol_and_exchange():
    Stock.objects.create(symbol="AAPL", exchange="NASDAQ")
    Stock.objects.create(symbol="AAPL", exchange="LSE")
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.create(symbol="AAPL", exchange="NASDAQ")


def test_bar_round_trips_exact_decimals_and_utc():
    stock = Stock.objects.create(symbol="MSFT")
    bar(stock, close=Decimal("10.123456")).save()
    stored = Bar.objects.get()
    assert stored.close == Decimal("10.123456")
    assert stored.timestamp == T0 and stored.timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "overrides",
    [{"high": Decimal("8")}, {"open": Decimal("0")}, {"low": Decimal("-1")}, {"volume": -1}],
    ids=["high_below_low", "zero_open", "negative_low", "negative_volume"],
)
def test_bar_sanity_constraints(overrides):
    stock = Stock.objects.create(symbol="MSFT")
    with pytest.raises(IntegrityError), transaction.atomic():
        bar(stock, **overrides).save()


def test_bar_is_unique_per_stock_timeframe_timestamp():
    stock = Stock.objects.create(symbol="MSFT")
    bar(stock).save()
    bar(stock, timeframe="5min").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        bar(stock).save()


def test_indicator_is_unique_per_name_and_parameters():
    stock = Stock.objects.create(symbol="MSFT")
    common = dict(stock=stock, timeframe="1day", timestamp=T0, name="sma")
    Indicator.objects.create(**common, params_key="length=10", value=1.0)
    Indicator.objects.create(**common, params_key="length=20", value=2.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Indicator.objects.create(**common, params_key="length=10", value=3.0)
