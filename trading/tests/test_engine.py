"""The engine's pieces: start-up, reconciliation rules, commands, locks, heartbeat, stop."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pandas as pd
import pytest
from django.db import connection

from execution import order_lifecycle
from execution.brokers import get_broker
from execution.brokers.base import SubmitOutcomeUnknown
from execution.brokers.paper import PaperBroker
from execution.engine_commands import request_close_trade, set_kill_switch
from execution.models import EngineCommand, ExecutionState, Order, PaperOrder, Trade
from execution.order_lifecycle import OrderIntent
from execution.reconcile import reconcile
from marketdata.models import Stock
from marketdata.services import ingest_bars
from strategies.models import Strategy, StrategyEvent
from trading.engine import Engine, EngineOptions
from trading.engine.locks import StrategyLocks
from trading.management.commands.run_trader import parse_speed, parse_time
from trading.models import EngineHeartbeat

pytestmark = pytest.mark.django_db
DAYS = pd.bdate_range("2023-01-02", periods=130, tz="UTC")


def make_bars(n=120, drift=0.5):
    close = [100 + drift * i + (5 if (i // 10) % 2 else -5) for i in range(n)]
    return pd.DataFrame(
        {
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [1000] * n,
        },
        index=DAYS[:n],
    )


@pytest.fixture
def setup_strategy(db):
    stock = Stock.objects.create(symbol="TEST", exchange="NYSE")
    ingest_bars(stock, "1day", make_bars(120))
    strategy = Strategy.objects.create(
        name="engine", strategy_class="sma_crossover", parameters={"fast": 2, "slow": 5}, active=True
    )
    strategy.stocks.add(stock)
    return strategy, stock


def run(**options) -> Engine:
    engine = Engine(EngineOptions(speed=None, heartbeat_interval=0, **options), broker=PaperBroker())
    assert engine.run() == 0
    return engine


def test_replay_trades_and_reports_heartbeat(setup_strategy):
    strategy, _ = setup_strategy
    engine = run(start=DAYS[20].to_pydatetime(), end=DAYS[-1].to_pydatetime())
    assert engine.bars_processed == 100 - 0
    assert Trade.objects.filter(strategy=strategy).count() >= 3
    beat = EngineHeartbeat.objects.get()
    assert beat.state == "stopped" and beat.details["bars_processed"] == 100
    assert ExecutionState.objects.get(key="engine.cursor.1day").value["ts"].startswith("2023-06-16")
    types = set(StrategyEvent.objects.values_list("event_type", flat=True))
    assert {
        "engine.started",
        "reconcile.done",
        "signal.entry_long",
        "trade.closed",
        "engine.stopped",
    } <= types
    # a second run over the same period resumes at the end: nothing happens twice
    orders = Order.objects.count()
    assert run(start=DAYS[20].to_pydatetime(), end=DAYS[-1].to_pydatetime()).bars_processed == 0
    assert Order.objects.count() == orders


def test_live_replay_starts_a_few_hundred_bars_before_the_end_and_waits(setup_strategy):
    engine = Engine(EngineOptions(speed=1000, demo_bars=30, poll_interval=0.01), broker=PaperBroker())
    calls = []

    def idle(seconds):
        calls.append(seconds)
        if len(calls) > 30:  # the 30 replayed bars, then one wait for new bars
            engine.stop_requested = True

    with (
        mock.patch.object(engine, "idle", side_effect=idle),
        mock.patch.object(engine, "install_signal_handlers"),
    ):
        engine.run()
    assert engine.bars_processed == 30
    assert StrategyEvent.objects.filter(event_type="engine.caught_up").exists()


def test_new_bars_are_picked_up(setup_strategy):
    strategy, stock = setup_strategy
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    engine.load_strategies()
    engine.load_history()
    engine.connect_and_reconcile()
    more = make_bars(125).iloc[120:]
    ingest_bars(stock, "1day", more)
    assert engine.poll_new_bars() == 5
    ingest_bars(stock, "1day", more.iloc[:0])
    assert engine.on_new_bar("TEST", "1day") == []
    engine.shutdown()


def test_commands_are_carried_out_by_the_engine(setup_strategy, trader):
    strategy, _ = setup_strategy
    run(start=DAYS[20].to_pydatetime(), end=DAYS[60].to_pydatetime())
    trade = Trade.objects.filter(status="open").first()
    engine = Engine(EngineOptions(speed=None, end=DAYS[61].to_pydatetime()), broker=PaperBroker())
    engine.setup()
    if trade is not None:
        request_close_trade(trade, trader)
    set_kill_switch(True, strategy, trader)
    engine.service()
    assert not EngineCommand.objects.filter(status="pending").exists()
    assert StrategyEvent.objects.filter(event_type="command.done").exists()
    engine.shutdown()


def test_reconciliation_rules(setup_strategy):
    strategy, stock = setup_strategy
    broker = PaperBroker()
    broker.connect()
    now = DAYS[50].to_pydatetime()

    def order(cid, purpose="entry", bar=now, side="buy", trade=None):
        return order_lifecycle.create_order(
            OrderIntent(
                stock=stock,
                side=side,
                quantity=Decimal("1"),
                purpose=purpose,
                strategy=strategy,
                client_order_id=cid,
                trade=trade,
                context={"bar_time": bar.isoformat(), "price": "100"},
            )
        )[0]

    fresh = order("fresh")
    stale = order("stale", bar=now - timedelta(days=5))
    trade = Trade.objects.create(strategy=strategy, stock=stock, entry_time=now, entry_price=100, quantity=1)
    exit_order = order("exit", purpose="exit", side="sell", trade=trade)
    adopted = order("adopted")
    broker.submit(
        order_lifecycle.order_request(adopted)
    )  # the broker got it, the process died before the ack
    lost = order("lost")
    with mock.patch.object(broker, "submit", side_effect=SubmitOutcomeUnknown("timeout")):
        order_lifecycle.submit_order(lost, broker)
    report = reconcile(broker, fresh_after=now)
    assert report.sent == ["fresh", "exit"] and report.cancelled == ["stale"]
    assert report.adopted == ["adopted"] and report.resolved == ["lost"]
    statuses = dict(Order.objects.values_list("client_order_id", "status"))
    assert statuses == {
        "fresh": "submitted",
        "stale": "cancelled",
        "exit": "submitted",
        "adopted": "submitted",
        "lost": "cancelled",
    }
    assert PaperOrder.objects.filter(client_order_id="adopted").count() == 1
    # the open trade is not at the broker: a position difference for a person to look at
    assert report.mismatches == ["TEST: broker holds 0, open trades hold 1"]
    assert StrategyEvent.objects.filter(event_type="reconcile.position_mismatch", severity="error").exists()
    assert fresh.pk and stale.pk and exit_order.pk


@pytest.mark.skipif("connection.vendor == 'postgresql'")
def test_file_locks_keep_a_strategy_to_one_engine(settings, tmp_path):
    settings.ENGINE_LOCK_DIR = tmp_path
    first, second = StrategyLocks(), StrategyLocks()
    assert first.acquire(1) and first.acquire(1)
    assert not second.acquire(1)
    first.release_all()
    assert second.acquire(1)
    second.release_all()


def test_advisory_locks_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    import psycopg

    s = connection.settings_dict
    locks = StrategyLocks()
    assert locks.acquire(42)
    with psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
    ) as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", [0x5354, 42]).fetchone()[0] is False
        locks.release_all()
        assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", [0x5354, 42]).fetchone()[0] is True


def test_a_strategy_locked_elsewhere_is_skipped(setup_strategy):
    strategy, _ = setup_strategy
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    with mock.patch.object(engine.locks, "acquire", return_value=False):
        engine.load_strategies()
    assert engine.runners == []
    assert StrategyEvent.objects.filter(event_type="engine.strategy_locked").exists()
    Strategy.objects.filter(pk=strategy.pk).update(parameters={"fast": 50, "slow": 5})
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    engine.load_strategies()
    assert engine.runners == []
    assert StrategyEvent.objects.filter(event_type="engine.strategy_invalid").exists()


def test_signals_stop_the_loop(setup_strategy):
    import signal

    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        engine.install_signal_handlers()
        signal.raise_signal(signal.SIGTERM)
        assert engine.stop_requested
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_command_line_parsing():
    assert parse_time("2018-01-02", "--from") == datetime(2018, 1, 2, tzinfo=UTC)
    assert parse_speed("max") is None and parse_speed("20") == 20
    from django.core.management.base import CommandError

    for bad in ("x", "-1"):
        with pytest.raises(CommandError):
            parse_speed(bad)
    with pytest.raises(CommandError, match="--from: expected a date"):
        parse_time("yesterday", "--from")


def test_run_trader_command_replays_a_period(setup_strategy):
    from django.core.management import call_command

    with mock.patch("trading.engine.loop.Engine.install_signal_handlers"):
        call_command("run_trader", "--from", "2023-02-01", "--to", "2023-03-01", "--speed", "max")
    assert EngineHeartbeat.objects.get().state == "stopped"
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("run_trader", "--from", "2023-03-01", "--to", "2023-02-01")


def test_broker_factory(settings):
    assert get_broker("paper").name == "paper"
    with pytest.raises(ValueError, match="unknown broker"):
        get_broker("nope")


def test_strategies_switched_on_and_off_are_picked_up(setup_strategy):
    strategy, stock = setup_strategy
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    engine.setup()
    assert [r.model.pk for r in engine.runners] == [strategy.pk] and engine.refresh_strategies() is False
    other = Stock.objects.create(symbol="OTHER")
    ingest_bars(other, "1day", make_bars(40))
    added = Strategy.objects.create(
        name="added",
        strategy_class="ema_crossover",
        parameters={"fast": 2, "slow": 5},
        active=True,
        timeframe="1h",
    )
    added.stocks.add(other)
    Strategy.objects.filter(pk=strategy.pk).update(active=False)
    assert engine.refresh_strategies() is True
    assert [r.model.pk for r in engine.runners] == [added.pk]
    assert ("1h", "OTHER") in engine.history and "1h" in engine.cursor
    assert StrategyEvent.objects.filter(event_type="engine.strategies_changed").exists()
    engine.shutdown()


def test_unknown_orders_are_resolved_by_a_targeted_query(setup_strategy):
    strategy, stock = setup_strategy
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    engine.setup()
    order = order_lifecycle.create_order(
        OrderIntent(stock=stock, side="buy", quantity=Decimal("1"), strategy=strategy, client_order_id="u1")
    )[0]
    engine.broker.submit(order_lifecycle.order_request(order))  # it did reach the broker
    with mock.patch.object(engine.broker, "submit", side_effect=SubmitOutcomeUnknown("timeout")):
        order_lifecycle.submit_order(order, engine.broker)
    assert Order.objects.get(pk=order.pk).status == "unknown"
    engine._last_refresh = 0
    engine.service()
    assert Order.objects.get(pk=order.pk).status == "submitted"
    with mock.patch(
        "execution.order_lifecycle.resolve_unknown", side_effect=SubmitOutcomeUnknown("still down")
    ):
        Order.objects.filter(pk=order.pk).update(status="unknown")
        assert engine.resolve_unknown_orders() == 1
    assert StrategyEvent.objects.filter(event_type="order.resolve_failed").exists()
    engine.shutdown()


def test_signals_are_recorded_while_the_broker_is_away(setup_strategy):
    from execution.brokers.base import BrokerUnavailable
    from strategies.models import TradeSignal

    engine = Engine(EngineOptions(speed=None, start=DAYS[20].to_pydatetime(), end=DAYS[-1].to_pydatetime()))
    engine.broker = PaperBroker()
    engine.setup()
    with mock.patch.object(engine.broker, "account", side_effect=BrokerUnavailable("gateway restart")):
        for ts, timeframe in engine.pending_times():
            engine.step(timeframe, ts)
    assert TradeSignal.objects.exists() and not Order.objects.exists()
    assert StrategyEvent.objects.filter(event_type="engine.signal_not_traded").exists()
    assert StrategyEvent.objects.filter(event_type="engine.account_failed").exists()
    engine.shutdown()


def test_excursions_widen_with_each_bar_and_leave_the_rest_of_the_trade(setup_strategy):
    strategy, stock = setup_strategy
    engine = Engine(EngineOptions(speed=None), broker=PaperBroker())
    engine.load_strategies()
    context = {"index_trend": "up", "reasons": ["crossed"]}
    trade = Trade.objects.create(
        strategy=strategy,
        stock=stock,
        direction="long",
        entry_time=DAYS[10].to_pydatetime(),
        entry_price=Decimal("100"),
        quantity=Decimal("5"),
        market_context=context,
    )

    def bar(high, low):
        return {"TEST": {"high": high, "low": low, "open": 100, "close": 100}}

    engine.update_excursions(bar(104.5, 97))
    trade.refresh_from_db()
    assert (trade.mae, trade.mfe) == (Decimal("3"), Decimal("4.5"))
    engine.update_excursions(bar(102, 95.25))  # a deeper low widens MAE only
    trade.refresh_from_db()
    assert (trade.mae, trade.mfe) == (Decimal("4.75"), Decimal("4.5"))
    assert trade.market_context == context and trade.entry_price == Decimal("100")
