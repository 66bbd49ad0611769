import csv
import io
import re

import pytest
from django.urls import reverse

from execution import engine_commands
from execution.backtest import tasks as backtest_tasks
from execution.models import Order
from strategies.models import Strategy, StrategyEvent
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
def world():
    stock = make_stock("AAPL")
    strategy = make_strategy(stock)
    closed = make_story(stock, strategy, closed=True, pnl="50")
    losing = make_story(stock, strategy, closed=True, pnl="-20")
    open_trade = make_story(stock, strategy, closed=False)
    order = make_open_order(stock, strategy)
    event = make_event("engine started", strategy=strategy)
    run = make_backtest(strategy)
    return {
        "stock": stock,
        "strategy": strategy,
        "closed": closed,
        "losing": losing,
        "open": open_trade,
        "order": order,
        "event": event,
        "backtest": run,
    }


def _pages(world):
    s, t, b = world["strategy"], world["closed"], world["backtest"]
    return [
        reverse("overview"),
        reverse("strategies"),
        reverse("strategy-detail", args=[s.pk]),
        reverse("stocks"),
        reverse("stock-detail", args=["AAPL"]),
        reverse("trades"),
        reverse("trade-detail", args=[t.pk]),
        reverse("orders"),
        reverse("events"),
        reverse("backtests"),
        reverse("backtest-compare") + f"?ids={b.pk}",
        reverse("alerts"),
    ]


def test_every_page_needs_sign_in(client, world):
    for url in _pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_every_page_renders_for_a_viewer(client, viewer, world):
    client.force_login(viewer)
    for url in _pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"app.css" in response.content
        assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', response.content.decode())
        assert assets and all(a.startswith(("/static/", "data:")) for a in assets), (url, assets)


def test_overview_shows_account_positions_strategies_signals_and_events(client, trader, world):
    client.force_login(trader)
    html = client.get("/").content.decode()
    assert 'id="equity"' in html and 'id="day-pnl"' in html
    assert f'href="/trades/{world["open"].pk}/"' in html  # the open position
    assert "SMA demo" in html and "Kill" in html
    assert "crossed above" in html  # a signal's reason
    assert "engine started" in html
    assert '"events"' in html  # subscribes to the live groups
    assert "vendor/lightweight-charts" in html


def test_viewer_sees_no_trading_buttons(client, viewer, world):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "Kill switch: stop all" not in html
    html = client.get(reverse("orders")).content.decode()
    assert ">Cancel<" not in html


def test_strategy_form_validates_parameters(client, trader, world):
    strategy = world["strategy"]
    client.force_login(trader)
    url = reverse("strategy-detail", args=[strategy.pk])
    page = client.get(url).content.decode()
    assert 'name="param_fast"' in page and 'name="param_slow"' in page
    data = {
        "name": strategy.name,
        "timeframe": "1day",
        "stocks": [world["stock"].pk],
        "sizing_method": "fixed_fraction",
        "position_fraction": "0.1",
        "risk_per_trade": "0.01",
        "stop_loss_type": "none",
        "stop_loss_value": "0",
        "take_profit_type": "none",
        "take_profit_value": "0",
        "max_open_positions": "5",
        "param_fast": "40",
        "param_slow": "30",
    }
    response = client.post(url, data)
    assert response.status_code == 400
    assert "must be less than slow" in response.content.decode()
    strategy.refresh_from_db()
    assert strategy.parameters == {"fast": 10, "slow": 30}

    response = client.post(url, {**data, "param_fast": "abc"})
    assert response.status_code == 400

    response = client.post(url, {**data, "param_fast": "5", "param_slow": "50"})
    assert response.status_code == 302
    strategy.refresh_from_db()
    assert strategy.parameters == {"fast": 5, "slow": 50}


def test_non_trader_cannot_post(client, viewer, world):
    client.force_login(viewer)
    s = world["strategy"]
    for url in [
        reverse("strategy-detail", args=[s.pk]),
        reverse("strategy-activation", args=[s.pk]),
        reverse("strategy-backtest", args=[s.pk]),
        reverse("kill-switch"),
        reverse("order-cancel", args=[world["order"].pk]),
        reverse("trade-close", args=[world["open"].pk]),
    ]:
        assert client.post(url, {"active": "0"}).status_code == 403, url


def test_activate_and_deactivate_journal_an_event(client, trader, world):
    client.force_login(trader)
    s = world["strategy"]
    response = client.post(reverse("strategy-activation", args=[s.pk]), {"active": "0"})
    assert response.status_code == 302
    s.refresh_from_db()
    assert s.active is False
    assert StrategyEvent.objects.filter(event_type="strategy.deactivated", strategy=s).exists()
    client.post(reverse("strategy-activation", args=[s.pk]), {"active": "1"})
    s.refresh_from_db()
    assert s.active is True


def test_actions_call_the_services(client, trader, world, monkeypatch):
    calls = []
    for module, name in [
        (engine_commands, "set_kill_switch"),
        (engine_commands, "request_cancel_order"),
        (engine_commands, "request_close_trade"),
        (backtest_tasks, "start_backtest"),
    ]:
        monkeypatch.setattr(module, name, lambda *a, name=name, **k: calls.append(name) or None)
    client.force_login(trader)
    client.post(reverse("kill-switch"), {"enabled": "1"})
    client.post(reverse("order-cancel", args=[world["order"].pk]))
    client.post(reverse("trade-close", args=[world["open"].pk]))
    client.post(reverse("strategy-backtest", args=[world["strategy"].pk]))
    assert calls == ["set_kill_switch", "request_cancel_order", "request_close_trade", "start_backtest"]


def test_cancelling_a_filled_order_or_closing_a_closed_trade_is_refused(client, trader, world):
    client.force_login(trader)
    filled = Order.objects.filter(status="filled").first()
    response = client.post(reverse("order-cancel", args=[filled.pk]), follow=True)
    assert "only open orders can be cancelled" in response.content.decode()
    response = client.post(reverse("trade-close", args=[world["closed"].pk]), follow=True)
    assert "already closed" in response.content.decode()


def test_trades_filters_totals_and_csv(client, viewer, world):
    client.force_login(viewer)
    url = reverse("trades")
    response = client.get(url, {"outcome": "win"})
    assert response.context["totals"]["count"] == 1
    assert response.context["totals"]["pnl"] == 50
    response = client.get(url, {"outcome": "loss"})
    assert response.context["totals"]["count"] == 1
    response = client.get(url, {"outcome": "open"})
    assert response.context["totals"]["open"] == 1
    response = client.get(url, {"symbol": "MSFT"})
    assert response.context["totals"]["count"] == 0
    response = client.get(url, {"strategy": world["strategy"].pk, "start": "2024-01-01", "end": "2030-01-01"})
    totals = response.context["totals"]
    assert totals["count"] == 3 and totals["wins"] == 1 and totals["losses"] == 1
    assert totals["profit_factor"] == pytest.approx(2.5)
    # bad filters are shown as form errors, never a 500
    response = client.get(url, {"start": "2024-02-01", "end": "2024-01-01", "strategy": "nope"})
    assert response.status_code == 200 and response.context["form"].errors

    response = client.get(url, {"format": "csv", "outcome": "win"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "strategy", "symbol"]
    assert len(rows) == 2 and rows[1][2] == "AAPL" and rows[1][11] == "50.000000"


def test_trade_detail_tells_the_whole_story(client, viewer, world):
    client.force_login(viewer)
    trade = world["closed"]
    html = client.get(reverse("trade-detail", args=[trade.pk])).content.decode()
    assert "crossed above" in html  # the reasons
    assert "sma_10" in html  # indicator values
    assert "index_trend" in html  # market context
    assert f"c-{trade.pk}-entry" in html and "Fill 10" in html  # orders and fills on the timeline
    assert 'id="trade-chart"' in html


def test_stock_page_indicators_and_markers(client, viewer, world):
    client.force_login(viewer)
    response = client.get(
        reverse("stock-detail", args=["aapl"]), {"ind": ["ema", "rsi", "nope"], "tf": "zzz"}
    )
    chart = response.context["chart"]
    assert response.context["timeframe"] == "1day"
    assert len(chart["bars"]) == 80
    names = {s["name"] for s in chart["series"]}
    assert names == {"ema_20", "rsi_14"}
    assert any(m["text"].startswith("Buy") for m in chart["markers"])
    assert client.get(reverse("stock-detail", args=["NOPE"])).status_code == 404


def test_orders_and_events_filters(client, viewer, world):
    client.force_login(viewer)
    response = client.get(reverse("orders"), {"status": "open"})
    assert [o.pk for o in response.context["page"].object_list] == [world["order"].pk]
    response = client.get(reverse("orders"), {"status": "bogus"})
    assert response.status_code == 200
    make_event("bad thing", severity="error", event_type="engine.error")
    response = client.get(reverse("events"), {"severity": "error"})
    assert [e.message for e in response.context["page"].object_list] == ["bad thing"]
    response = client.get(reverse("events"), {"event_type": "engine.started"})
    assert [e.message for e in response.context["page"].object_list] == ["engine started"]


def test_backtests_list_and_comparison(client, viewer, world):
    client.force_login(viewer)
    other = make_backtest(world["strategy"])
    other.metrics = {"total_return": -0.05, "custom_metric": 3}
    other.save()
    response = client.get(reverse("backtests"), {"status": "done"})
    assert response.context["page"].paginator.count == 2
    response = client.get(reverse("backtest-compare"), {"ids": [world["backtest"].pk, other.pk, "x"]})
    html = response.content.decode()
    assert "12.00%" in html and "-5.00%" in html and "Custom metric" in html
    curves = response.context["curves"]
    assert [p["equity"] for p in curves[0]["points"]] == [100000.0, 99000.0, 101000.0]
    assert curves[0]["points"][1]["drawdown"] == pytest.approx(-1.0)
    response = client.get(reverse("backtest-detail", args=[world["backtest"].pk]))
    assert response.status_code == 302
    assert client.get(reverse("backtest-compare")).status_code == 200


def test_alert_rules_page(client, trader):
    client.force_login(trader)
    url = reverse("alerts")
    response = client.post(url, {"channel": "webhook", "target": "not a url", "event_types": ["error"]})
    assert response.status_code == 400
    response = client.post(
        url, {"channel": "webhook", "target": "https://x.test/h", "event_types": ["error"], "enabled": "on"}
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.user == trader and rule.event_types == ["error"]
    client.post(url, {"delete": rule.pk})
    assert not AlertRule.objects.exists()


def test_strategy_with_unknown_class_edits_raw_json(client, trader):
    strategy = Strategy.objects.create(name="Gone", strategy_class="vanished", parameters={"a": 1})
    client.force_login(trader)
    url = reverse("strategy-detail", args=[strategy.pk])
    assert b"parameters_json" in client.get(url).content


def test_strategy_form_errors_on_hidden_fields_do_not_crash(client, trader, world):
    strategy = Strategy.objects.create(name="Gone2", strategy_class="vanished", parameters={"a": 1})
    client.force_login(trader)
    data = {
        "name": "Gone2",
        "timeframe": "1day",
        "sizing_method": "fixed_fraction",
        "position_fraction": "0.1",
        "risk_per_trade": "0.01",
        "stop_loss_type": "none",
        "stop_loss_value": "0",
        "take_profit_type": "none",
        "take_profit_value": "0",
        "max_open_positions": "5",
        "parameters_json": '{"a": 2}',
    }
    response = client.post(reverse("strategy-detail", args=[strategy.pk]), data)
    assert response.status_code == 400
    assert "vanished" in response.content.decode()  # the unknown class, shown as a form error
    strategy.refresh_from_db()
    assert strategy.parameters == {"a": 1}


def test_strategy_saved_through_the_service_keeps_stocks(client, trader, world):
    strategy = world["strategy"]
    other = make_stock("MSFT", bars=5)
    client.force_login(trader)
    data = {
        "name": "Renamed",
        "timeframe": "1day",
        "stocks": [world["stock"].pk, other.pk],
        "sizing_method": "fixed_fraction",
        "position_fraction": "0.2",
        "risk_per_trade": "0.01",
        "stop_loss_type": "percent",
        "stop_loss_value": "2",
        "take_profit_type": "none",
        "take_profit_value": "0",
        "max_open_positions": "3",
        "param_fast": "8",
        "param_slow": "21",
    }
    response = client.post(reverse("strategy-detail", args=[strategy.pk]), data)
    assert response.status_code == 302
    strategy.refresh_from_db()
    assert strategy.name == "Renamed" and strategy.parameters == {"fast": 8, "slow": 21}
    assert sorted(strategy.stocks.values_list("symbol", flat=True)) == ["AAPL", "MSFT"]


def test_bad_form_values_are_404_not_500_and_next_stays_on_site(client, trader, world):
    client.force_login(trader)
    assert client.post(reverse("kill-switch"), {"enabled": "1", "strategy": "abc"}).status_code == 404
    assert client.post(reverse("alerts"), {"delete": "abc"}).status_code == 404
    response = client.post(
        reverse("order-cancel", args=[world["order"].pk]), {"next": "https://evil.example/steal"}
    )
    assert response["Location"] == reverse("orders")
    response = client.post(reverse("trade-close", args=[world["open"].pk]), {"next": "/trades/"})
    assert response["Location"] == "/trades/"
    assert client.get(reverse("trades"), {"page": "abc"}).status_code == 200
    assert client.get(reverse("events"), {"page": "999"}).status_code == 200
