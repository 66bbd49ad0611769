from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from execution import broker_reports, engine_commands, order_lifecycle
from execution.models import EngineCommand, ExecutionState, Order, Protection, Trade
from execution.order_lifecycle import OrderIntent
from strategies.models import Strategy, StrategyEvent

from .conftest import T0, bar

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, trader):
    client.force_login(trader)
    return client


def open_trade(stock, strategy, broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    order, _ = order_lifecycle.create_order(
        OrderIntent(stock=stock, side="buy", quantity=Decimal("10"), strategy=strategy, client_order_id="E1")
    )
    order_lifecycle.submit_order(order, broker)
    broker.on_bar("AAPL", bar(1, 100, 100, 100, 100))
    for event in broker.poll_events():
        broker_reports.apply_event(event)
    return Trade.objects.get()


def test_cancel_action_writes_a_command_the_engine_carries_out(api, stock, strategy, broker):
    order = order_lifecycle.submit_order(
        order_lifecycle.create_order(
            OrderIntent(stock=stock, side="buy", quantity=Decimal("1"), client_order_id="c1")
        )[0],
        broker,
    )
    response = api.post(f"/api/orders/{order.pk}/cancel/")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "cancel_order"
    (done,) = engine_commands.process_commands(broker)
    assert done.status == "done"
    for event in broker.poll_events():
        broker_reports.apply_event(event)
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert api.post(f"/api/orders/{order.pk}/cancel/").status_code == 400
    assert StrategyEvent.objects.filter(event_type="command.done").exists()


def test_close_action_and_refusal(api, stock, strategy, broker):
    trade = open_trade(stock, strategy, broker)
    assert api.post(f"/api/trades/{trade.pk}/close/").status_code == 202
    engine_commands.process_commands(broker)
    broker.on_bar("AAPL", bar(2, 110, 110, 110, 110))
    for event in broker.poll_events():
        broker_reports.apply_event(event)
    trade.refresh_from_db()
    assert trade.status == "closed" and trade.exit_reason == "manual" and trade.realized_pnl == Decimal("100")
    assert api.post(f"/api/trades/{trade.pk}/close/").status_code == 400


def test_kill_switch_endpoint(api, stock, strategy, broker):
    trade = open_trade(stock, strategy, broker)
    pending = order_lifecycle.submit_order(
        order_lifecycle.create_order(
            OrderIntent(
                stock=stock, side="buy", quantity=Decimal("1"), strategy=strategy, client_order_id="e2"
            )
        )[0],
        broker,
    )
    assert api.post("/api/kill-switch/", {"enabled": "maybe"}).status_code == 400
    assert api.post("/api/kill-switch/", {"enabled": True, "strategy": 999}).status_code == 400
    response = api.post(
        "/api/kill-switch/",
        {"enabled": True, "strategy": strategy.pk, "close_positions": True},
        "application/json",
    )
    assert response.status_code == 202
    strategy.refresh_from_db()
    assert strategy.kill_switch is True
    assert api.get("/api/kill-switch/").json() == {"global": False, "strategies": [strategy.pk]}
    (command,) = engine_commands.process_commands(broker)
    assert command.status == "done" and "1 orders cancelled, 1 trades closing" in command.result
    broker.on_bar("AAPL", bar(2, 90, 90, 90, 90))
    for event in broker.poll_events():
        broker_reports.apply_event(event)
    trade.refresh_from_db()
    pending.refresh_from_db()
    assert trade.exit_reason == "kill_switch" and pending.status == "cancelled"
    assert api.post("/api/kill-switch/", {"enabled": True}, "application/json").status_code == 202
    assert ExecutionState.objects.get(key="kill_switch").value["enabled"] is True
    engine_commands.set_kill_switch(False)
    assert api.get("/api/kill-switch/").json()["global"] is False


def test_protections_list_create_delete(api, strategy, stock, viewer, client):
    later = timezone.now() + timedelta(days=1)
    p = Protection.objects.create(
        strategy=strategy, stock=stock, kind="cooldown", reason="r", created_at=T0, expires_at=later
    )
    body = api.get("/api/protections/").json()
    assert body["results"][0]["id"] == p.pk and body["results"][0]["active"] is True
    response = api.post(
        "/api/protections/",
        {"strategy": strategy.pk, "reason": "earnings", "expires_at": later.isoformat()},
        "application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "manual"
    bad = api.post("/api/protections/", {"reason": "x", "expires_at": "yesterday"}, "application/json")
    assert bad.status_code == 400
    past = api.post(
        "/api/protections/",
        {"reason": "x", "expires_at": (timezone.now() - timedelta(days=1)).isoformat()},
        "application/json",
    )
    assert past.status_code == 400
    assert api.delete(f"/api/protections/{p.pk}/").status_code == 204
    assert not Protection.objects.filter(pk=p.pk).exists()
    assert StrategyEvent.objects.filter(event_type="protection.removed").exists()


def test_viewers_cannot_write(client, viewer, stock):
    client.force_login(viewer)
    order = Order.objects.create(
        client_order_id="v1", stock=stock, side="buy", quantity=1, status="submitted"
    )
    assert client.post(f"/api/orders/{order.pk}/cancel/").status_code == 403
    assert client.post("/api/kill-switch/", {"enabled": True}).status_code == 403
    assert client.get("/api/engine-commands/").status_code == 200
    assert not EngineCommand.objects.exists()


def test_failed_command_is_reported(stock, strategy, broker):
    order = Order.objects.create(
        client_order_id="f1", stock=stock, side="buy", quantity=1, status="submitted"
    )
    command = engine_commands.request_cancel_order(order)
    order.status = "filled"
    order.save()
    (done,) = engine_commands.process_commands(broker)
    assert done.status == "failed" and "not open" in done.result
    with pytest.raises(engine_commands.CommandError):
        engine_commands.request_cancel_order(order)
    assert command.pk == done.pk
    assert Strategy.objects.count() == 1
