"""Odd payloads never 500: a few hand-picked ones and a hypothesis fuzz of JSON values."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.models import BacktestRun
from strategies.models import Strategy

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
STRATEGY_FIELDS = [
    "name",
    "strategy_class",
    "parameters",
    "symbols",
    "timeframe",
    "position_fraction",
    "stop_loss_type",
    "stop_loss_value",
    "take_profit_type",
    "max_open_positions",
    "risk_settings",
]
BACKTEST_FIELDS = [
    "strategy",
    "strategy_class",
    "parameters",
    "symbols",
    "timeframe",
    "start",
    "end",
    "settings",
]


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "", "strategy_class": "sma_crossover"},
        {"name": "x", "strategy_class": "sma_crossover", "parameters": None},
        {"name": "x", "strategy_class": "sma_crossover", "symbols": "AAA"},
        {"name": "x", "strategy_class": "sma_crossover", "max_open_positions": -1},
        {"name": "x", "strategy_class": "sma_crossover", "risk_settings": [1, 2]},
        {"name": "x", "strategy_class": "sma_crossover", "parameters": {"fast": [1]}},
        {"name": "x", "strategy_class": ["sma_crossover"]},
    ],
)
def test_odd_strategy_payloads_are_400(stored_bars, trader_client, payload):
    assert trader_client.post("/api/strategies/", payload, format="json").status_code == 400
    assert not Strategy.objects.exists()


TARGETS = [("strategies", f) for f in STRATEGY_FIELDS] + [("backtests", f) for f in BACKTEST_FIELDS]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(TARGETS), value=json_values)
def test_fuzzed_payloads_never_500(stored_bars, trader_client, target, value):
    endpoint, field = target
    if endpoint == "strategies":
        payload = {"name": "fuzz", "strategy_class": "sma_crossover", "symbols": ["AAA"], field: value}
    else:
        payload = {"strategy_class": "sma_crossover", "symbols": ["AAA"], field: value}
    response = trader_client.post(f"/api/{endpoint}/", payload, format="json")
    assert response.status_code < 500, (payload, response.content)
    Strategy.objects.all().delete()
    BacktestRun.objects.all().delete()
