"""Every risk rule: the rejection and what the journal says."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from execution import broker_reports, order_lifecycle, pipeline, protections, risk
from execution.models import EquitySnapshot, Order, Protection, Trade
from execution.order_lifecycle import OrderIntent
from strategies.models import StrategyEvent

from .conftest import bar

pytestmark = pytest.mark.django_db
BAR = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday session
NOW = BAR + timedelta(days=1)


def check(strategy, stock, **kw):
    values = dict(
        strategy=strategy,
        stock=stock,
        side="buy",
        quantity=Decimal("10"),
        price=Decimal("100"),
        bar_time=BAR,
        now=NOW,
        equity=Decimal("100000"),
        free_cash=Decimal("100000"),
    )
    values.update(kw)
    return risk.EntryCheck(**values)


def rejected(c) -> risk.RiskRejected:
    with pytest.raises(risk.RiskRejected) as info:
        risk.check_entry(c)
    return info.value


def test_a_clean_entry_passes(strategy, stock):
    risk.check_entry(check(strategy, stock))


def test_kill_switches(strategy, stock):
    risk.set_global_kill_switch(True)
    assert str(rejected(check(strategy, stock))) == "global kill switch is on: no new orders"
    risk.set_global_kill_switch(False)
    strategy.kill_switch = True
    error = rejected(check(strategy, stock))
    assert error.rule == "kill_switch" and "kill switch of demo is on" in str(error)


def test_protection_lock(strategy, stock):
    Protection.objects.create(
        strategy=strategy,
        stock=stock,
        kind="cooldown",
        reason="3 bars",
        created_at=BAR,
        expires_at=BAR + timedelta(days=2),
    )
    error = rejected(check(strategy, stock))
    assert error.rule == "protection" and str(error) == "cooldown lock until 2024-01-04 00:00: 3 bars"
    # a lock on another symbol does not apply
    other = type(stock).objects.create(symbol="MSFT")
    risk.check_entry(check(strategy, other))


def test_trading_hours_from_the_exchange_calendar(strategy, stock):
    strategy.timeframe = "1h"
    saturday = datetime(2024, 1, 6, 14, tzinfo=UTC)
    error = rejected(check(strategy, stock, bar_time=saturday, timeframe="1h"))
    assert error.rule == "trading_hours" and "market closed at 2024-01-06 15:00 UTC" in str(error)
    risk.check_entry(check(strategy, stock, bar_time=datetime(2024, 1, 2, 15, tzinfo=UTC), timeframe="1h"))
    error = rejected(check(strategy, stock, bar_time=datetime(1980, 1, 2, tzinfo=UTC)))
    assert error.rule == "trading_hours" and "no XNYS session" in str(error)
    strategy.risk_settings = {"trading_hours": False}
    risk.check_entry(check(strategy, stock, bar_time=saturday, timeframe="1h"))


def _submitted(stock, strategy, n, at):
    for i in range(n):
        Order.objects.create(
            client_order_id=f"r{i}",
            stock=stock,
            strategy=strategy,
            side="buy",
            quantity=1,
            status="submitted",
            submitted_at=at,
        )


def test_max_orders_per_minute(strategy, stock, settings):
    strategy.risk_settings = {"max_orders_per_minute": 3}
    _submitted(stock, strategy, 3, NOW - timedelta(seconds=20))
    error = rejected(check(strategy, stock, quantity=Decimal("1")))
    assert (
        error.rule == "max_orders_per_minute"
        and str(error) == "demo sent 3 orders in the last minute (limit)"
    )
    strategy.risk_settings = {"max_orders_per_minute": 0, "allow_multiple_positions": True}
    settings.RISK_MAX_ORDERS_PER_MINUTE = 2
    assert "across all strategies" in str(rejected(check(strategy, stock)))


def test_max_daily_loss_stops_for_the_day(strategy, stock, settings):
    settings.RISK_MAX_DAILY_LOSS = 0.02
    EquitySnapshot.objects.create(timestamp=BAR - timedelta(days=1), equity=Decimal("100000"), cash=0)
    error = rejected(check(strategy, stock, equity=Decimal("97000")))
    assert error.rule == "max_daily_loss" and "equity down 3.00% today (limit 2.00%)" in str(error)
    lock = Protection.objects.get(kind="daily_loss")
    assert lock.strategy is None and lock.expires_at == BAR + timedelta(days=1)
    # the lock holds for the rest of the day even after equity recovers, and ends with it
    assert rejected(check(strategy, stock)).rule == "protection"
    risk.check_entry(check(strategy, stock, bar_time=BAR + timedelta(days=1), now=NOW + timedelta(days=1)))


def test_max_daily_loss_per_strategy(strategy, stock):
    strategy.risk_settings = {"max_daily_loss": 0.01}
    EquitySnapshot.objects.create(timestamp=BAR - timedelta(days=1), equity=Decimal("100000"), cash=0)
    Trade.objects.create(
        strategy=strategy,
        stock=stock,
        entry_time=BAR,
        entry_price=100,
        quantity=10,
        status="closed",
        exit_time=BAR + timedelta(hours=15),
        exit_price=1,
        realized_pnl=Decimal("-1500"),
    )
    error = rejected(check(strategy, stock))
    assert error.rule == "max_daily_loss" and "demo lost 1500.00 today (limit 1000.00)" in str(error)


def test_one_position_per_strategy_and_symbol(strategy, stock):
    Trade.objects.create(strategy=strategy, stock=stock, entry_time=BAR, entry_price=100, quantity=10)
    error = rejected(check(strategy, stock))
    assert error.rule == "one_position" and str(error) == "demo already has a position in AAPL"
    strategy.risk_settings = {"allow_multiple_positions": True}
    risk.check_entry(check(strategy, stock))


def test_max_open_positions(strategy, stock, settings):
    strategy.max_open_positions = 1
    other = type(stock).objects.create(symbol="MSFT")
    Trade.objects.create(strategy=strategy, stock=other, entry_time=BAR, entry_price=100, quantity=10)
    error = rejected(check(strategy, stock))
    assert error.rule == "max_open_positions" and str(error) == "demo holds 1 positions (limit 1)"
    strategy.max_open_positions = 5
    settings.RISK_MAX_OPEN_POSITIONS = 1
    assert str(rejected(check(strategy, stock))) == "1 positions open overall (limit 1)"


def test_max_position_size(strategy, stock, settings):
    strategy.risk_settings = {"max_position_shares": 5}
    error = rejected(check(strategy, stock))
    assert error.rule == "max_position_size" and str(error) == "10 shares of AAPL exceed the limit of 5"
    strategy.risk_settings = {"max_position_pct": 0.005}
    error = rejected(check(strategy, stock))
    assert str(error) == "AAPL position 1000.00 is 1.0% of equity (limit 0.5%, demo)"
    strategy.risk_settings = {}
    settings.RISK_MAX_POSITION_PCT = 0.001
    assert "global" in str(rejected(check(strategy, stock)))


def test_buying_power(strategy, stock):
    error = rejected(check(strategy, stock, free_cash=Decimal("999")))
    assert (
        error.rule == "buying_power" and str(error) == "AAPL position 1000.00 exceeds the buying power 999.00"
    )


def test_rejections_are_journaled_by_the_pipeline(strategy, stock, broker):
    risk.set_global_kill_switch(True)
    ctx = pipeline.SignalContext(strategy, stock, "entry_long", BAR, Decimal("100"), NOW)
    book = pipeline.Book(Decimal("10000"), Decimal("10000"))
    assert pipeline.execute(ctx, broker, book) is None
    event = StrategyEvent.objects.get(event_type="risk.rejected")
    assert event.message == "AAPL: global kill switch is on: no new orders"
    assert event.metadata["rule"] == "kill_switch" and event.severity == "warning"
    risk.set_global_kill_switch(False)
    strategy.stop_loss_type, strategy.stop_loss_value = "atr", Decimal("2")
    assert pipeline.execute(ctx, broker, book) is None
    assert (
        "cannot be computed yet (ATR warm-up)"
        in StrategyEvent.objects.filter(event_type="risk.rejected").first().message
    )
    strategy.stop_loss_type = "none"
    zero = pipeline.Book(Decimal("0"), Decimal("0"))
    assert pipeline.execute(ctx, broker, zero) is None
    assert "position size is zero" in StrategyEvent.objects.filter(event_type="risk.rejected").first().message
    order = pipeline.execute(ctx, broker, book)
    assert order.status == "submitted" and order.quantity == Decimal("10")
    assert book.free_cash == Decimal("9000")
    assert pipeline.execute(ctx, broker, book).pk == order.pk  # the same signal again: the same order


def test_exit_signal_closes_the_position(strategy, stock, broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    entry = order_lifecycle.submit_order(
        order_lifecycle.create_order(
            OrderIntent(
                stock=stock, side="buy", quantity=Decimal("5"), strategy=strategy, client_order_id="e"
            )
        )[0],
        broker,
    )
    broker.on_bar("AAPL", bar(1, 100, 100, 100, 100))
    for event in broker.poll_events():
        broker_reports.apply_event(event)
    entry.refresh_from_db()
    ctx = pipeline.SignalContext(strategy, stock, "exit_long", BAR, Decimal("100"), NOW)
    order = pipeline.execute(ctx, broker, None)
    assert order.purpose == "exit" and order.quantity == 5 and order.trade_id == entry.trade_id
    assert pipeline.execute(ctx, broker, None).pk == order.pk
    none = pipeline.SignalContext(strategy, stock, "exit_short", BAR, Decimal("100"), NOW)
    assert pipeline.execute(none, broker, None) is None


def test_cooldown_and_stop_streak_protections_use_the_backtester_rules(strategy, stock):
    strategy.risk_settings = {
        "cooldown_bars": 2,
        "stoploss_guard_limit": 2,
        "stoploss_guard_window": 10,
        "stoploss_guard_pause": 5,
    }
    strategy.stop_loss_type, strategy.stop_loss_value = "percent", Decimal("5")
    strategy.save()
    made = []
    for day in (2, 3):  # two stop-loss exits on consecutive sessions
        t = Trade.objects.create(
            strategy=strategy,
            stock=stock,
            entry_time=BAR,
            entry_price=100,
            quantity=1,
            status="closed",
            exit_time=datetime(2024, 1, day + 1, tzinfo=UTC),
            exit_price=95,
            exit_reason="stop_loss",
        )
        made += protections.protections_after_exit(t)
    kinds = [p.kind for p in made]
    assert kinds.count("cooldown") == 2 and kinds.count("stoploss_streak") == 1
    cooldown = Protection.objects.filter(kind="cooldown").order_by("-expires_at").first()
    assert cooldown.expires_at == datetime(2024, 1, 8, tzinfo=UTC)  # 2 sessions after Jan 4 (a Friday)
    streak = Protection.objects.get(kind="stoploss_streak")
    assert streak.stock is None and "2 stop-losses within 10 bars" in streak.reason
    assert StrategyEvent.objects.filter(event_type="protection.created").count() == 3


def test_max_drawdown_protection(strategy):
    strategy.risk_settings = {"max_drawdown": 0.1, "max_drawdown_window": 5, "max_drawdown_pause": 3}
    for i, equity in enumerate([100, 110, 105, 98]):
        EquitySnapshot.objects.create(timestamp=datetime(2024, 1, 2 + i, tzinfo=UTC), equity=equity, cash=0)
    lock = protections.drawdown_protection(strategy, datetime(2024, 1, 5, tzinfo=UTC))
    assert lock is not None and lock.kind == "max_drawdown"
    assert "10.9% below its peak of the last 5 bars (limit 10.0%)" in lock.reason
    assert protections.drawdown_protection(strategy, datetime(2024, 1, 4, tzinfo=UTC)) is None


def test_bar_index_round_trips():
    ts = datetime(2024, 1, 5, tzinfo=UTC)
    assert protections.bar_time(protections.bar_index(ts, "1day"), "1day") == ts
    hour = datetime(2024, 1, 5, 15, tzinfo=UTC)
    assert protections.bar_time(protections.bar_index(hour, "1h"), "1h") == hour
    assert protections.bar_time(10**7, "1day").year == 9999
    assert np.int64(protections.bar_index(ts, "1day")) > 0
