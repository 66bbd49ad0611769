"""The read and write helpers behind the pages: selectors shapes, actions' fallbacks."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from execution import reports
from execution import selectors as execution_selectors
from execution.models import BacktestRun, EngineCommand, EquitySnapshot
from strategies import services as strategy_services
from strategies.models import Strategy
from trading import actions
from trading.templatetags.trading_extras import metric
from trading.tests.factories import make_backtest, make_open_order, make_stock, make_story, make_strategy
from trading.web import presenters
from trading.web.selectors import orders as order_selectors
from trading.web.selectors import overview as overview_selectors
from trading.web.selectors import stocks as stock_selectors
from trading.web.selectors import strategies as strategy_selectors

pytestmark = pytest.mark.django_db


def test_equity_points_accept_every_stored_shape():
    iso = [["2024-01-01T00:00:00Z", 100], ["2024-01-02", 110]]
    assert [p["equity"] for p in presenters.equity_points(iso)] == [100.0, 110.0]
    dicts = [{"timestamp": 1704067200000, "equity": 5}, {"time": 1704153600, "value": 6}, {"t": None, "v": 1}]
    assert [p["time"] for p in presenters.equity_points(dicts)] == [1704067200, 1704153600]
    columns = {"timestamps": ["2024-01-01T00:00:00+00:00"], "equity": [7]}
    assert presenters.equity_points(columns) == [{"time": 1704067200, "equity": 7.0}]
    junk = [["not a date", 1], [True, 2], ["2024-01-01", "nan"], "x", [datetime(2024, 1, 3, tzinfo=UTC), "8"]]
    assert presenters.equity_points(junk) == [{"time": 1704240000, "equity": 8.0}]
    assert presenters.equity_points(None) == []
    curve = presenters.with_drawdown([{"time": 1, "equity": 100.0}, {"time": 2, "equity": 80.0}])
    assert curve[1]["drawdown"] == pytest.approx(-20.0)


def test_metric_filter():
    assert metric(0.1234, "pct") == "12.34%"
    assert metric(3, "raw") == "3" and metric(2.5, "raw") == "2.5"
    assert metric(1234.5) == "1,234.50"
    assert metric(None) == "—" and metric("n/a") == "n/a" and metric(True) == "True"


def test_backtest_dict_and_metric_rows():
    run = make_backtest()
    data = presenters.backtest_dict(run, with_curve=True)
    assert data["done"] is True and len(data["equity"]) == 3
    rows = presenters.metric_rows([run])
    assert rows[0]["key"] == "total_return" and rows[0]["kind"] == "pct"


def test_day_pnl_uses_the_last_snapshot_before_midnight():
    stock = make_stock()
    strategy = make_strategy(stock)
    make_story(stock, strategy, closed=True, pnl="50")
    EquitySnapshot.objects.create(
        timestamp=datetime.now(UTC) - timedelta(days=2), equity=Decimal("99000"), cash=Decimal("99000")
    )
    summary = overview_selectors.account_summary()
    assert summary.equity == Decimal("100050")
    assert summary.day_pnl == Decimal("1050")
    history = overview_selectors.equity_history()
    assert history and history[0]["equity"] == 99000.0


def test_trade_story_without_signal_uses_market_context():
    stock = make_stock()
    strategy = make_strategy(stock)
    trade = make_story(stock, strategy)
    trade.signal = None
    trade.market_context = {"reasons": ["breakout"], "indicators": {"atr_14": 2.0}}
    trade.save()
    story = reports.trade_story(trade)
    assert story.reasons == ["breakout"] and story.indicator_values == {"atr_14": 2.0}
    chart = stock_selectors.trade_chart(trade)
    assert chart["bars"] and chart["markers"]


def test_order_and_signal_dicts():
    stock = make_stock()
    strategy = make_strategy(stock)
    order = make_open_order(stock, strategy)
    assert presenters.order_dict(order)["status"] == "submitted"
    assert order_selectors.orders(status="submitted", strategy_id=strategy.pk, symbol="aapl").count() == 1


def test_activation_refused_without_stocks(client, trader):
    strategy = make_strategy(active=False)
    client.force_login(trader)
    response = client.post(reverse("strategy-activation", args=[strategy.pk]), {"active": "1"}, follow=True)
    assert "at least one stock" in response.content.decode()
    strategy.refresh_from_db()
    assert strategy.active is False


def test_kill_switch_and_commands_through_execution(client, trader):
    stock = make_stock()
    strategy = make_strategy(stock)
    order = make_open_order(stock, strategy)
    trade = make_story(stock, strategy, closed=False)
    client.force_login(trader)
    client.post(reverse("kill-switch"), {"enabled": "1"})
    assert overview_selectors.global_kill_switch() is True
    assert b"Release global kill switch" in client.get("/").content
    client.post(reverse("kill-switch"), {"enabled": "1", "strategy": strategy.pk})
    strategy.refresh_from_db()
    assert strategy.kill_switch is True and presenters.strategy_state(strategy) == "killed"
    client.post(reverse("order-cancel", args=[order.pk]))
    client.post(reverse("trade-close", args=[trade.pk]))
    kinds = list(EngineCommand.objects.values_list("kind", flat=True))
    assert kinds == ["kill_switch_on", "kill_switch_on", "cancel_order", "close_trade"]
    client.post(reverse("kill-switch"), {"enabled": "0"})
    assert overview_selectors.global_kill_switch() is False


def test_run_a_backtest_from_the_strategy_page(client, trader, django_capture_on_commit_callbacks):
    stock = make_stock(bars=120)
    strategy = make_strategy(stock)
    client.force_login(trader)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("strategy-backtest", args=[strategy.pk]), follow=True)
    assert response.status_code == 200
    run = BacktestRun.objects.get(strategy=strategy)
    assert run.status in ("done", "failed"), run.error
    page = client.get(reverse("strategy-detail", args=[strategy.pk])).content.decode()
    assert f"#{run.pk}" in page


def test_backtest_of_an_invalid_strategy_is_refused(client, trader):
    strategy = Strategy.objects.create(name="Empty", strategy_class="sma_crossover")
    client.force_login(trader)
    response = client.post(reverse("strategy-backtest", args=[strategy.pk]), follow=True)
    assert "Backtest not started" in response.content.decode()
    assert not BacktestRun.objects.exists()


def test_strategy_form_save_puts_service_errors_back_on_the_form(monkeypatch):
    from django.core.exceptions import ValidationError

    from trading.web.forms import StrategyForm

    stock = make_stock()
    strategy = make_strategy(stock)
    data = {
        "name": "Saved",
        "timeframe": "1day",
        "stocks": [stock.pk],
        "sizing_method": "fixed_fraction",
        "position_fraction": "0.1",
        "risk_per_trade": "0.01",
        "stop_loss_type": "none",
        "stop_loss_value": "0",
        "take_profit_type": "none",
        "take_profit_value": "0",
        "max_open_positions": "5",
        "param_fast": "10",
        "param_slow": "30",
    }

    def refuse(*args, **kwargs):
        raise ValidationError({"name": ["already taken"], "risk_settings": ["bad"]})

    monkeypatch.setattr(strategy_services, "update_strategy", refuse)
    form = StrategyForm(data, instance=strategy)
    assert form.is_valid(), form.errors
    with pytest.raises(ValidationError):
        actions.save_strategy(form)
    assert form.errors["name"] == ["already taken"] and "risk_settings: bad" in form.non_field_errors()


def test_account_equity_matches_the_execution_selectors():
    from execution.selectors import equity_now

    stock = make_stock()
    other = make_stock("MSFT", bars=10)
    strategy = make_strategy(stock)
    make_story(stock, strategy, closed=True, pnl="50")
    make_story(stock, strategy, closed=False)
    make_story(other, strategy, closed=False)
    summary = overview_selectors.account_summary()
    reference = equity_now()
    assert summary.equity == reference.equity
    assert summary.unrealized_pnl == reference.unrealized_pnl
    assert summary.open_positions == reference.open_positions == 2


def test_a_protection_shows_the_strategy_locked(client, viewer):
    from execution.models import Protection

    strategy = make_strategy()
    now = datetime.now(UTC)
    Protection.objects.create(
        strategy=strategy,
        kind="cooldown",
        reason="3 bars",
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )
    row = strategy_selectors.strategies_with_state()[0]
    assert row["locked_until"] is not None
    client.force_login(viewer)
    assert b">locked<" in client.get("/").content


def test_positions_are_marked_at_the_closes_the_engine_has_seen():
    from execution.models import ExecutionState
    from execution.selectors import equity_now
    from trading.tests.factories import T0

    stock = make_stock()  # closes 101 .. 180, one a day from T0
    make_story(stock, make_strategy(stock), closed=False)  # 10 long at 142
    # no engine has run: the newest stored close
    assert [p.last_price for p in execution_selectors.open_positions()] == [Decimal("180")]
    # an engine replaying history has finished the bar of day 49: bars after it are its future
    for timeframe, day in (("1day", 49), ("1h", 45)):
        when = (T0 + timedelta(days=day)).isoformat()
        ExecutionState.objects.create(key=f"engine.cursor.{timeframe}", value={"ts": when})
    ExecutionState.objects.create(key="kill_switch", value={"on": False})  # not a cursor
    (position,) = execution_selectors.open_positions()
    assert position.last_price == Decimal("150") and position.unrealized_pnl == Decimal("80")
    assert equity_now().unrealized_pnl == Decimal("80")  # the same marks for the equity
