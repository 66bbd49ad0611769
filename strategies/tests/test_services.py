"""Strategy services: validated create/update, activation, idempotent signals, backtest runs."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from strategies import services
from strategies.backtest import BacktestSettings
from strategies.models import BacktestRun, Strategy, StrategyEvent, TradeSignal
from strategies.tasks import run_backtest

pytestmark = pytest.mark.django_db


def make(stored_bars, **overrides):
    values = {
        "name": "Trend",
        "strategy_class": "sma_crossover",
        "parameters": {"fast": 5, "slow": 20},
        "stop_loss_type": "percent",
        "stop_loss_value": Decimal("5"),
    }
    values.update(overrides)
    return services.create_strategy(stocks=["AAA", "BBB"], **values)


def test_create_fills_defaults_and_journals(stored_bars):
    strategy = make(stored_bars, parameters={"fast": 5})
    assert strategy.parameters == {"fast": 5, "slow": 30}
    assert sorted(strategy.stocks.values_list("symbol", flat=True)) == ["AAA", "BBB"]
    assert StrategyEvent.objects.filter(strategy=strategy, event_type="strategy.created").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"parameters": {"fast": 40, "slow": 30}}, "parameters", "fast: must be less than slow"),
        ({"parameters": {"fast": "ten"}}, "parameters", "fast: expected a number"),
        ({"parameters": {"speed": 3}}, "parameters", "speed: unknown parameter"),
        ({"parameters": {"fast": 1}}, "parameters", "fast: must be at least 2"),
        ({"strategy_class": "nope"}, "strategy_class", "unknown strategy 'nope'"),
        (
            {"take_profit_type": "r_multiple", "take_profit_value": 2, "stop_loss_type": "none"},
            "take_profit_type",
            "stop",
        ),
        (
            {"stop_loss_type": "percent", "stop_loss_value": Decimal("0")},
            "stop_loss_value",
            "must be positive",
        ),
        ({"sizing_method": "fixed_risk", "stop_loss_type": "none"}, "sizing_method", "needs a stop"),
        (
            {"risk_settings": {"cooldown_bars": "two"}},
            "risk_settings",
            "cooldown_bars: expected a whole number",
        ),
        ({"risk_settings": {"commission": "free"}}, "risk_settings", "commission must be one of"),
    ],
)
def test_invalid_strategy_is_rejected_per_field(stored_bars, overrides, field, text):
    with pytest.raises(ValidationError) as info:
        make(stored_bars, **overrides)
    assert field in info.value.message_dict
    assert text in " ".join(info.value.message_dict[field])
    assert not Strategy.objects.exists()


def test_unknown_symbol_and_unknown_field(stored_bars):
    with pytest.raises(ValidationError, match="unknown symbol"):
        services.create_strategy(name="x", strategy_class="sma_crossover", stocks=["ZZZ"])
    with pytest.raises(ValidationError, match="unknown field"):
        services.create_strategy(name="x", strategy_class="sma_crossover", colour="red")


def test_update_keeps_row_when_invalid(stored_bars):
    strategy = make(stored_bars)
    with pytest.raises(ValidationError):
        services.update_strategy(strategy, parameters={"fast": 50, "slow": 20})
    assert strategy.parameters == {"fast": 5, "slow": 20}
    services.update_strategy(strategy, parameters={"fast": 8, "slow": 21}, stocks=["AAA"])
    strategy.refresh_from_db()
    assert strategy.parameters == {"fast": 8, "slow": 21}
    assert list(strategy.stocks.values_list("symbol", flat=True)) == ["AAA"]


def test_activate_and_deactivate(stored_bars):
    strategy = make(stored_bars)
    services.activate(strategy)
    services.activate(strategy)  # no second event
    assert Strategy.objects.get(pk=strategy.pk).active
    services.deactivate(strategy)
    assert not Strategy.objects.get(pk=strategy.pk).active
    types = list(StrategyEvent.objects.filter(strategy=strategy).values_list("event_type", flat=True))
    assert types.count("strategy.activated") == 1 and "strategy.deactivated" in types
    empty = services.create_strategy(name="Empty", strategy_class="sma_crossover")
    with pytest.raises(ValidationError, match="at least one stock"):
        services.activate(empty)


def test_model_clean_rejects_short_on_long_only_class(stored_bars, monkeypatch):
    strategy = Strategy(name="s", strategy_class="sma_crossover", allow_short=True)
    strategy.clean()  # SMA supports shorts
    from strategies.library.sma_crossover import SmaCrossover

    monkeypatch.setattr(SmaCrossover, "supports_short", False)
    with pytest.raises(ValidationError, match="does not support shorts"):
        strategy.clean()


def test_signals_are_stored_once_with_reasons_and_snapshot(stored_bars):
    strategy = make(stored_bars)
    first = services.evaluate_signals(strategy, "AAA")
    assert first, "the fixture bars should produce crossings"
    count = TradeSignal.objects.count()
    again = services.evaluate_signals(strategy, stored_bars["AAA"])
    assert TradeSignal.objects.count() == count
    assert [s.pk for s in again] == [s.pk for s in first]
    signal = first[0]
    assert signal.signal_type in ("entry_long", "exit_long")
    assert signal.reasons and "SMA(5)" in signal.reasons[0]
    assert set(signal.indicator_values) == {"sma_5", "sma_20"}
    assert signal.price > 0
    latest = services.evaluate_signals(strategy, "AAA", latest_only=True)
    assert all(s.timestamp == max(x.timestamp for x in first) for s in latest) or latest == []


def test_backtest_run_through_the_task(stored_bars):
    run = services.create_backtest_run(
        strategy_class="sma_crossover", parameters={"fast": 5, "slow": 20}, symbols=["AAA", "BBB"]
    )
    run_backtest.enqueue(run.pk)
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.metrics["trades"] == len(run.trades) > 0
    assert run.equity_curve[0][0].startswith("2020-01-01")
    assert {"symbol", "entry_time", "pnl", "exit_reason"} <= set(run.trades[0])
    assert run_backtest.call(run.pk) == "done"  # not re-run
    assert run_backtest.call(999999) == "missing"


def test_backtest_of_a_strategy_row_uses_its_settings(stored_bars):
    strategy = make(stored_bars, risk_settings={"initial_cash": 5000.0, "commission": "none"})
    run = services.backtest_strategy_row(strategy)
    assert run.status == "done"
    assert run.settings["initial_cash"] == 5000.0 and run.settings["stop_type"] == "percent"
    assert run.metrics["initial_equity"] == 5000.0
    assert run.strategy == strategy


def test_failed_backtest_records_its_error(stored_bars):
    run = services.create_backtest_run(strategy_class="sma_crossover", symbols=["AAA"])
    run.start = run.end = None
    run.parameters = {"fast": 50, "slow": 20}
    run.save()
    services.execute_backtest_run(run)
    run.refresh_from_db()
    assert run.status == "failed" and "fast" in run.error


def test_backtest_request_validation(stored_bars):
    with pytest.raises(ValidationError) as info:
        services.create_backtest_run(
            strategy_class="sma_crossover",
            parameters={"fast": "x"},
            symbols=["AAA", "NOPE"],
            settings={"initial_cash": -1},
        )
    errors = info.value.message_dict
    assert "parameters.fast" in errors and "symbols" in errors and "settings.initial_cash" in errors
    assert not BacktestRun.objects.exists()


def test_settings_from_strategy_row(stored_bars):
    strategy = make(
        stored_bars,
        take_profit_type="r_multiple",
        take_profit_value=Decimal("2"),
        risk_settings={"slippage_bps": 5, "cooldown_bars": 3, "something_for_live": True},
    )
    settings = BacktestSettings.from_strategy(strategy)
    assert settings.stop_type == "percent" and settings.stop_value == 5.0
    assert settings.target_type == "r_multiple" and settings.costs.slippage_bps == 5.0
    assert settings.cooldown_bars == 3
    from strategies.backtest.stops import levels

    assert levels("long", 100.0, None, strategy) == (95.0, 110.0)
    assert levels(-1, 100.0, 2.0, settings) == pytest.approx((105.0, 90.0))


def test_unexpected_error_marks_the_run_failed(stored_bars, monkeypatch):
    run = services.create_backtest_run(strategy_class="sma_crossover", symbols=["AAA"])

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "run_from_inputs", boom)
    services.execute_backtest_run(run)
    run.refresh_from_db()
    assert run.status == "failed" and "RuntimeError: disk on fire" in run.error


def test_warmup_covers_the_atr_of_atr_stops(stored_bars):
    from strategies.library.sma_crossover import SmaCrossover

    plain = BacktestSettings()
    atr = BacktestSettings(stop_type="atr", stop_value=2.0, atr_length=14)
    assert services.warmup_bars(SmaCrossover(), plain) == 31
    assert services.warmup_bars(SmaCrossover(), atr) == 141
