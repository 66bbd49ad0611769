import csv
import io

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from execution import engine_commands
from execution.backtest import tasks as backtest_tasks
from execution.models import Order, SweepRun, Trade
from strategies.models import StrategyEvent
from trading.models import AlertRule
from trading.tests.factories import (
    make_backtest,
    make_event,
    make_open_order,
    make_stock,
    make_story,
    make_strategy,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.test", "pw-boss-123")
    client.force_login(user)
    return client


@pytest.fixture
def world():
    stock = make_stock("AAPL", bars=60)
    strategy = make_strategy(stock)
    trade = make_story(stock, strategy, closed=True)
    open_trade = make_story(stock, strategy, closed=False)
    order = make_open_order(stock, strategy)
    make_event("note", strategy=strategy, metadata={"x": 1})
    run = make_backtest(strategy)
    SweepRun.objects.create(
        strategy_class="sma_crossover",
        grid={"fast": [5, 10]},
        timeframe="1day",
        results=[{"parameters": {"fast": 5}, "sharpe": 1.2}],
    )
    AlertRule.objects.create(user=_user(), channel="email", target="a@b.test", event_types=["error"])
    return {
        "stock": stock,
        "strategy": strategy,
        "trade": trade,
        "open": open_trade,
        "order": order,
        "run": run,
    }


def _user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get_or_create(username="owner")[0]


def test_every_admin_list_and_change_page_renders(admin_client, world):
    for model in site._registry:
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        obj = model.objects.first()
        if obj is not None:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client.get(url).status_code == 200, url


def test_trade_page_tells_the_story(admin_client, world):
    trade = world["trade"]
    html = admin_client.get(reverse("admin:execution_trade_change", args=[trade.pk])).content.decode()
    assert "crossed above" in html  # signal reasons
    assert "sma_10" in html  # indicator values
    assert "index_trend" in html  # market context
    assert f"c-{trade.pk}-entry" in html and "Fill 10" in html  # orders, fills, timeline
    assert reverse("trade-detail", args=[trade.pk]) in html  # link to the trader page
    assert reverse("admin:strategies_strategy_change", args=[world["strategy"].pk]) in html


def test_strategy_activate_and_deactivate_actions(admin_client, world):
    strategy = world["strategy"]
    url = reverse("admin:strategies_strategy_changelist")
    admin_client.post(url, {"action": "deactivate", "_selected_action": [strategy.pk]})
    strategy.refresh_from_db()
    assert strategy.active is False
    assert StrategyEvent.objects.filter(event_type="strategy.deactivated").exists()
    admin_client.post(url, {"action": "activate", "_selected_action": [strategy.pk]})
    strategy.refresh_from_db()
    assert strategy.active is True


def test_write_actions_go_through_the_services(admin_client, world, monkeypatch):
    calls = []
    # the command queue's own checks run; what it would queue is recorded instead
    monkeypatch.setattr(engine_commands, "_enqueue", lambda kind, user=None, **targets: calls.append(kind))
    monkeypatch.setattr(backtest_tasks, "start_backtest", lambda strategy: calls.append("start_backtest"))
    admin_client.post(
        reverse("admin:execution_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [world["order"].pk]},
    )
    admin_client.post(
        reverse("admin:execution_trade_changelist"),
        {"action": "close_trades", "_selected_action": [world["open"].pk, world["trade"].pk]},
    )
    for action in ("kill_switch_on", "kill_switch_off", "run_backtest"):
        admin_client.post(
            reverse("admin:strategies_strategy_changelist"),
            {"action": action, "_selected_action": [world["strategy"].pk]},
        )
    assert calls == ["cancel_order", "close_trade", "kill_switch_on", "kill_switch_off", "start_backtest"]


def test_cancel_action_reports_its_outcome(admin_client, world):
    response = admin_client.post(
        reverse("admin:execution_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [world["order"].pk]},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("Cancel requested" in m for m in messages)


def test_export_trades_csv(admin_client, world):
    response = admin_client.post(
        reverse("admin:execution_trade_changelist"),
        {"action": "export_csv", "_selected_action": list(Trade.objects.values_list("pk", flat=True))},
    )
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3 and rows[0][0] == "id"


def test_backtest_compare_action_redirects(admin_client, world):
    other = make_backtest(world["strategy"])
    response = admin_client.post(
        reverse("admin:execution_backtestrun_changelist"),
        {"action": "compare", "_selected_action": [world["run"].pk, other.pk]},
    )
    assert response.status_code == 302 and "ids=" in response["Location"]


def test_alert_rule_enable_disable(admin_client, world):
    rule = AlertRule.objects.get()
    url = reverse("admin:trading_alertrule_changelist")
    admin_client.post(url, {"action": "disable", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.enabled is False
    admin_client.post(url, {"action": "enable", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.enabled is True
    assert Order.objects.exists()
