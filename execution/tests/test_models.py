from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from execution.models import Fill, Order, Trade
from marketdata.models import Stock
from strategies.models import Strategy, StrategyEvent, TradeSignal

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.fixture
def stock():
    return Stock.objects.create(symbol="AAPL", exchange="NASDAQ")


@pytest.fixture
def strategy():
    return Strategy.objects.create(name="demo", strategy_class="sma_crossover")


def test_order_client_id_is_unique(stock):
    Order.objects.create(client_order_id="c1", stock=stock, side="buy", quantity=Decimal("10"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(client_order_id="c1", stock=stock, side="buy", quantity=Decimal("5"))


@pytest.mark.parametrize(
    "overrides",
    [{"quantity": Decimal("0")}, {"filled_quantity": Decimal("11")}, {"limit_price": Decimal("-1")}],
)
def test_order_sanity_constraints(stock, overrides):
    values = {"client_order_id": "c2", "stock": stock, "side": "buy", "quantity": Decimal("10"), **overrides}
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(**values)


def test_fill_execution_id_is_unique(stock):
    order = Order.objects.create(client_order_id="c3", stock=stock, side="buy", quantity=Decimal("10"))
    Fill.objects.create(
        order=order, execution_id="x1", timestamp=T0, quantity=Decimal("5"), price=Decimal("1")
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Fill.objects.create(
            order=order, execution_id="x1", timestamp=T0, quantity=Decimal("5"), price=Decimal("1")
        )


def test_closed_trade_needs_its_exit(stock, strategy):
    with pytest.raises(IntegrityError), transaction.atomic():
        Trade.objects.create(
            strategy=strategy,
            stock=stock,
            status="closed",
            entry_time=T0,
            entry_price=Decimal("10"),
            quantity=Decimal("1"),
        )


def test_signal_is_unique_per_strategy_stock_bar_and_type(stock, strategy):
    values = dict(
        strategy=strategy,
        stock=stock,
        timestamp=T0,
        signal_type="entry_long",
        price=Decimal("10"),
        reasons=["SMA(10) crossed above SMA(30)"],
    )
    TradeSignal.objects.create(**values)
    with pytest.raises(IntegrityError), transaction.atomic():
        TradeSignal.objects.create(**values)


def test_system_events_have_no_strategy():
    event = StrategyEvent.objects.create(event_type="engine.started", message="engine started")
    assert event.strategy is None and event.severity == "info"


def test_strategy_risk_settings_are_checked():
    with pytest.raises(IntegrityError), transaction.atomic():
        Strategy.objects.create(name="bad", strategy_class="x", position_fraction=Decimal("1.5"))
