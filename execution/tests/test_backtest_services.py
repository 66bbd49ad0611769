"""Backtest services: runs through the task, a strategy row's settings, failures, warm-up."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from execution.backtest import BacktestSettings, services
from execution.backtest.tasks import run_backtest
from execution.models import BacktestRun
from strategies.services import create_strategy

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
    return create_strategy(stocks=["AAA", "BBB"], **values)


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
        risk_settings={"slippage_bps": 5, "cooldown_bars": 3, "trading_hours": False},
    )
    settings = BacktestSettings.from_strategy(strategy)
    assert settings.stop_type == "percent" and settings.stop_value == 5.0
    assert settings.target_type == "r_multiple" and settings.costs.slippage_bps == 5.0
    assert settings.cooldown_bars == 3
    from execution.stops import levels

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


def test_a_finished_run_is_broadcast_on_events(stored_bars, monkeypatch, django_capture_on_commit_callbacks):
    import trading.realtime.broadcast

    sent = []
    monkeypatch.setattr(trading.realtime.broadcast, "send_now", lambda *args: sent.append(args))
    run = services.create_backtest_run(strategy_class="sma_crossover", symbols=["AAA"])
    with django_capture_on_commit_callbacks(execute=True):
        services.execute_backtest_run(run)
    ((group, kind, payload),) = sent
    assert (group, kind, payload["id"], payload["status"]) == ("events", "backtest.finished", run.pk, "done")
