"""More of the /ws/ consumer: unsubscribe, malformed requests, journal events arriving."""

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
