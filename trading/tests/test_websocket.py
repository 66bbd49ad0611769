import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from trading.realtime.broadcast import send_now

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def _connect(user=None) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_anonymous_connection_is_refused():
    communicator, connected = await _connect()
    assert connected is False


async def test_ping_is_answered(trader):
    communicator, connected = await _connect(trader)
    assert connected
    await communicator.send_json_to({"type": "ping", "id": 7})
    assert await communicator.receive_json_from() == {"type": "pong", "id": 7}
    await communicator.disconnect()


async def test_subscribed_socket_receives_broadcasts_with_sequence(trader):
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["events", "bars.AAPL"]})
    assert await communicator.receive_json_from() == {"type": "subscribed", "groups": ["bars.AAPL", "events"]}
    await database_sync_to_async(send_now)("events", "event.created", {"id": 1})
    await database_sync_to_async(send_now)("events", "event.created", {"id": 2})
    first = await communicator.receive_json_from()
    second = await communicator.receive_json_from()
    assert first["type"] == "event.created" and first["payload"] == {"id": 1}
    assert second["seq"] == first["seq"] + 1 and second["source"] == first["source"]
    await communicator.disconnect()


async def test_unknown_group_and_message_are_errors(trader):
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["secrets!"]})
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_json_to({"type": "dance"})
    assert "unknown message type" in (await communicator.receive_json_from())["error"]
    await communicator.disconnect()


async def test_cross_process_layer_publishes_from_one_long_lived_loop(trader, settings):
    """With Redis, every send goes through the same publisher loop (a warm connection pool)."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from trading.realtime import broadcast

    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        pytest.skip("needs a cross-process channel layer (REDIS_URL)")
    communicator, _ = await _connect(trader)
    await communicator.send_json_to({"type": "subscribe", "groups": ["orders"]})
    await communicator.receive_json_from()
    for i in range(3):
        await database_sync_to_async(send_now)("orders", "order.updated", {"i": i})
    received = [(await communicator.receive_json_from())["payload"]["i"] for _ in range(3)]
    assert received == [0, 1, 2]
    loop = broadcast._publisher.loop()
    assert loop.is_running() and loop is broadcast._publisher.loop()
    await communicator.disconnect()
