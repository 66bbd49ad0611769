"""Strategy services: validated create/update, activation, idempotent signals."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from strategies import services
from strategies.models import Strategy, StrategyEvent, TradeSignal

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
