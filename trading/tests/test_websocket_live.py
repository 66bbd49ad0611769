"""More of the /ws/ consumer: unsubscribe, malformed requests, journal events arriving."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from strategies.events import record_event
from trading.tests.test_websocket import _connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_unsubscribe_stops_delivery(trader):
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["events", "orders"]})
    assert (await communicator.receive_json_from())["groups"] == ["events", "orders"]
    await communicator.send_json_to({"type": "unsubscribe", "groups": ["events"]})
    assert await communicator.receive_json_from() == {"type": "unsubscribed", "groups": ["orders"]}
    await database_sync_to_async(record_event)("engine.note", "nobody listens")
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_malformed_subscriptions_are_errors(trader):
    communicator, _ = await _connect(trader)
    for groups in ("events", [1, 2], None):
        await communicator.send_json_to({"type": "subscribe", "groups": groups})
        assert (await communicator.receive_json_from())["error"] == "groups must be a list of names"
    await communicator.send_json_to(["not", "an", "object"])
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.disconnect()


async def test_a_journal_event_reaches_a_subscribed_page(trader):
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["events"]})
    await communicator.receive_json_from()
    await database_sync_to_async(record_event)("trade.opened", "long 10 AAPL", severity="info", trade_id=3)
    message = await communicator.receive_json_from(timeout=3)
    assert message["type"] == "event.created" and message["group"] == "events"
    assert message["payload"]["message"] == "long 10 AAPL"
    assert message["payload"]["metadata"] == {"trade_id": 3}
    assert {"source", "seq", "sent_at"} <= set(message)
    await communicator.disconnect()


@pytest.fixture
def fast_relay(monkeypatch):
    from trading.realtime import relay

    monkeypatch.setattr(relay, "RELAY_INTERVAL_SECONDS", 0.05)
    return relay


async def _next_of_type(communicator, kind, timeout=3):
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


async def test_relay_delivers_journal_rows_written_by_another_process(trader, fast_relay, monkeypatch):
    from strategies.models import StrategyEvent

    # What the in-memory layer (the embedded default) gets; with Redis it is not needed.
    monkeypatch.setattr(fast_relay.LocalRelay, "relays_journal", staticmethod(lambda: True))

    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["events", "orders"]})
    await communicator.receive_json_from()
    await asyncio.sleep(0.2)  # the relay has taken its starting point
    # Written straight to the database, as the engine process does (no broadcast here).
    await database_sync_to_async(StrategyEvent.objects.create)(
        event_type="order.filled", severity="info", message="buy 5 AAPL filled"
    )
    event = await _next_of_type(communicator, "event.created")
    assert event["source"].startswith("relay:") and event["payload"]["message"] == "buy 5 AAPL filled"
    trigger = await _next_of_type(communicator, "relay.changed")
    assert trigger["group"] == "orders" and trigger["payload"]["event_type"] == "order.filled"
    await communicator.disconnect()


async def test_relay_sends_new_bars_of_subscribed_symbols(trader, fast_relay):
    from trading.tests.factories import make_stock

    stock = await database_sync_to_async(make_stock)("AAPL", 3)
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["bars.AAPL"]})
    await communicator.receive_json_from()
    await asyncio.sleep(0.2)

    def add_bar():
        from datetime import timedelta
        from decimal import Decimal

        from marketdata.models import Bar
        from trading.tests.factories import T0

        Bar.objects.create(
            stock=stock,
            timeframe="1day",
            timestamp=T0 + timedelta(days=10),
            open=Decimal("10"),
            high=Decimal("12"),
            low=Decimal("9"),
            close=Decimal("11.5"),
            volume=7,
        )

    await database_sync_to_async(add_bar)()
    bar = await _next_of_type(communicator, "bar.updated")
    assert bar["group"] == "bars.AAPL" and bar["payload"]["close"] == 11.5
    assert bar["payload"]["timeframe"] == "1day"
    await communicator.disconnect()


async def test_relay_leaves_the_journal_to_a_cross_process_layer(trader, fast_relay, monkeypatch):
    from strategies.models import StrategyEvent

    monkeypatch.setattr(fast_relay.LocalRelay, "relays_journal", staticmethod(lambda: False))
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["events"]})
    await communicator.receive_json_from()
    await asyncio.sleep(0.2)
    await database_sync_to_async(StrategyEvent.objects.create)(event_type="x", message="not relayed")
    assert await communicator.receive_nothing(timeout=0.4)
    await communicator.disconnect()
