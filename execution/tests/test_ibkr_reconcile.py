"""Engine start-up and reconnects with BROKER=ibkr: reconciliation against the fake IB.

- a restart with orders open (and one filled) at IB while the engine was down;
- a position at IB that the database does not know;
- a disconnect after a submit, the fill arriving in the gap, applied once on reconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from execution import order_lifecycle
from execution.brokers.ibkr import IBKRBroker
from execution.models import Fill, Order, Trade
from execution.order_lifecycle import OrderIntent
from execution.tests.fake_ib import FakeIB, fake_with_aapl, quick_broker
from marketdata.models import Bar, Stock
from strategies.models import Strategy, StrategyEvent

pytestmark = pytest.mark.django_db
engine_core = pytest.importorskip("trading.engine.loop")

T0 = datetime(2024, 1, 1, tzinfo=UTC)
D = Decimal


@pytest.fixture
def market(settings, tmp_path) -> Strategy:
    settings.ENGINE_LOCK_DIR = tmp_path
    stock = Stock.objects.create(symbol="AAPL", name="Apple", exchange="NASDAQ")
    Bar.objects.bulk_create(
        Bar(
            stock=stock,
            timeframe="1day",
            timestamp=T0 + timedelta(days=i),
            open=D(100 + i),
            high=D(102 + i),
            low=D(99 + i),
            close=D(101 + i),
            volume=1000,
        )
        for i in range(40)
    )
    strategy = Strategy.objects.create(
        name="sma", strategy_class="sma_crossover", parameters={"fast": 5, "slow": 15}, active=True
    )
    strategy.stocks.add(stock)
    return strategy


@pytest.fixture
def fake() -> FakeIB:
    return fake_with_aapl()


def ibkr(fake: FakeIB) -> IBKRBroker:
    return quick_broker(fake)


def engine_for(broker: IBKRBroker):
    options = engine_core.EngineOptions(
        start=T0 + timedelta(days=20), end=T0 + timedelta(days=39), poll_interval=0.01
    )
    engine = engine_core.Engine(options, broker=broker)
    engine.setup()
    return engine


def order_row(strategy: Strategy, cid: str, qty: str = "10", **context) -> Order:
    order, created = order_lifecycle.create_order(
        OrderIntent(
            stock=strategy.stocks.get(),
            side="buy",
            quantity=D(qty),
            strategy=strategy,
            client_order_id=cid,
            order_type="limit",
            limit_price=D("100"),
            context=context,
        ),
        broker_name="ibkr",
    )
    assert created
    return order


def errors() -> list[tuple[str, str]]:
    return list(
        StrategyEvent.objects.filter(severity__in=("error", "critical")).values_list("event_type", "message")
    )


def test_restart_with_orders_open_at_the_broker(market, fake):
    # The previous run wrote three orders. E-sent reached IB, but the process died before
    # the acknowledgement was stored; E-done was acknowledged and then filled while the
    # engine was down; E-new was written and never sent.
    sent = order_row(market, "E-sent")
    done = order_row(market, "E-done")
    fresh = order_row(market, "E-new", bar_time=(T0 + timedelta(days=39)).isoformat())
    at_ib = fake.add_open_order("E-sent", "AAPL", "BUY", 10, 100.0, order_id=3, client_id=7)
    fake.add_open_order("E-done", "AAPL", "BUY", 10, 100.0, order_id=4, client_id=7)
    Order.objects.filter(pk=done.pk).update(
        status="submitted", broker_order_id="x", broker_session_order_id=4
    )
    exec_id = fake.fill("E-done", 10, 99.5, commission=1.0, at=datetime.now(UTC) - timedelta(minutes=30))

    engine = engine_for(ibkr(fake))
    engine.handle_events()
    assert engine.trading_allowed

    sent.refresh_from_db()
    assert sent.status == "submitted"
    assert (sent.broker_order_id, sent.broker_session_order_id) == (str(at_ib.order.permId), 3)
    done.refresh_from_db()
    assert done.status == "filled" and done.filled_quantity == 10 and done.commission == D("1")
    assert Fill.objects.get().execution_id == exec_id
    trade = Trade.objects.get()
    assert (trade.quantity, trade.entry_price, trade.status) == (D("10"), D("99.5"), "open")
    fresh.refresh_from_db()
    assert fresh.status == "submitted"
    assert [o.orderRef for o in fake.placed] == ["E-new"]  # the only one IB did not have

    # Another restart: nothing is sent again, nothing counted twice.
    engine.shutdown()
    again = engine_for(ibkr(fake))
    again.handle_events()
    assert [o.orderRef for o in fake.placed] == ["E-new"]
    assert Fill.objects.count() == 1 and Trade.objects.count() == 1
    assert errors() == []


def test_a_position_at_the_broker_the_database_does_not_know(market, fake):
    fake.add_position("MSFT", 50, 301.25)
    engine = engine_for(ibkr(fake))
    mismatch = StrategyEvent.objects.get(event_type="reconcile.position_mismatch")
    assert mismatch.severity == "error"
    assert "MSFT" in mismatch.message and "50" in mismatch.message
    assert Trade.objects.count() == 0  # reported for a person to look at, not adopted
    engine.shutdown()


def test_disconnect_after_submit_fill_in_the_gap_applied_once(market, fake):
    from trading.models import EngineHeartbeat

    broker = ibkr(fake)
    engine = engine_for(broker)
    order = order_lifecycle.submit_order(order_row(market, "E-1"), broker)
    assert order.status == "submitted"
    engine.handle_events()

    fake.listening = False
    fake.drop_connection()
    engine.handle_events()
    assert engine.state == "disconnected"
    assert EngineHeartbeat.objects.get().state == "disconnected"
    assert StrategyEvent.objects.filter(event_type="broker.disconnected").exists()
    # While away: a new order waits, certainly not sent; IB fills the first one.
    waiting = order_lifecycle.submit_order(
        order_row(market, "E-2", bar_time=(T0 + timedelta(days=39)).isoformat()), broker
    )
    assert waiting.status == "pending_submit"
    fake.fill("E-1", 10, 100.0, commission=1.0, at=datetime.now(UTC) - timedelta(seconds=5))

    fake.restore()
    engine.handle_events()
    assert engine.state == "trading"
    order.refresh_from_db()
    assert order.status == "filled" and order.filled_quantity == 10
    assert Fill.objects.count() == 1 and Trade.objects.get().quantity == 10
    assert StrategyEvent.objects.filter(event_type="reconcile.done").count() == 2  # start-up, reconnect
    waiting.refresh_from_db()
    assert waiting.status == "submitted"  # sent by the reconciliation after the reconnect
    assert [o.orderRef for o in fake.placed] == ["E-1", "E-2"]
    assert errors() == []
    engine.shutdown()


def test_broker_ibkr_in_the_settings_gives_the_engine_the_ibkr_broker(market, fake, settings, monkeypatch):
    settings.BROKER = "ibkr"
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CLIENT_ID = "127.0.0.1", 4002, 7
    settings.IBKR_ACCOUNT = "DU1234567"
    monkeypatch.setattr("execution.brokers.ib_compat.IB", lambda: fake)  # the one seam: no TWS
    options = engine_core.EngineOptions(
        start=T0 + timedelta(days=20), end=T0 + timedelta(days=39), poll_interval=0.01
    )
    engine = engine_core.Engine(options)
    assert isinstance(engine.broker, IBKRBroker)
    engine.setup()
    assert engine.trading_allowed and engine.state == "trading"
    assert (fake.client.host, fake.client.port, fake.client_id) == ("127.0.0.1", 4002, 7)
    assert StrategyEvent.objects.filter(event_type="reconcile.done").exists()
    engine.shutdown()
    assert not fake.isConnected()
