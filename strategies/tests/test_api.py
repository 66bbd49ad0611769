"""The strategies API: permissions, validation with per-field errors, actions."""

import pytest
from rest_framework.test import APIClient

from strategies.models import Strategy

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "API trend",
    "strategy_class": "sma_crossover",
    "parameters": {"fast": 5, "slow": 20},
    "symbols": ["AAA"],
}


def test_anonymous_is_refused(stored_bars):
    client = APIClient()
    for url in ("/api/strategies/", "/api/strategy-classes/", "/api/backtests/"):
        assert client.get(url).status_code in (401, 403)
    assert client.post("/api/strategies/", GOOD, format="json").status_code in (401, 403)


def test_viewer_reads_but_cannot_write(stored_bars, viewer_client):
    assert viewer_client.get("/api/strategies/").status_code == 200
    assert viewer_client.post("/api/strategies/", GOOD, format="json").status_code == 403
    assert (
        viewer_client.post("/api/backtests/", {"strategy_class": "sma_crossover"}, format="json").status_code
        == 403
    )


def test_strategy_classes_with_schemas(viewer_client):
    response = viewer_client.get("/api/strategy-classes/")
    keys = {c["key"] for c in response.json()}
    assert {"sma_crossover", "ema_crossover", "rsi_mean_reversion", "macd_crossover"} <= keys
    assert {"bollinger_reversion", "donchian_breakout"} <= keys
    sma = viewer_client.get("/api/strategy-classes/sma_crossover/").json()
    assert sma["parameters"]["fast"] == {
        "type": "int",
        "default": 10,
        "min": 2,
        "max": 500,
        "choices": None,
        "help": "fast SMA length (bars)",
    }
    assert viewer_client.get("/api/strategy-classes/nope/").status_code == 404


def test_create_update_activate(stored_bars, trader_client):
    response = trader_client.post("/api/strategies/", GOOD, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["symbols"] == ["AAA"] and body["parameters"] == {"fast": 5, "slow": 20} and not body["active"]
    url = f"/api/strategies/{body['id']}/"
    assert trader_client.patch(url, {"parameters": {"fast": 7, "slow": 21}}, format="json").status_code == 200
    assert trader_client.post(url + "activate/").json()["active"] is True
    assert Strategy.objects.get(pk=body["id"]).active
    assert trader_client.post(url + "deactivate/").json()["active"] is False
    assert trader_client.delete(url).status_code == 204


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (
            {**GOOD, "parameters": {"fast": 40, "slow": 30}},
            {"parameters": {"fast": ["must be less than slow (30), got 40"]}},
        ),
        ({**GOOD, "parameters": {"fast": "x", "bogus": 1}}, {"parameters": {"fast": None, "bogus": None}}),
        ({**GOOD, "parameters": [1, 2]}, {"parameters": None}),
        ({**GOOD, "strategy_class": "nope"}, {"strategy_class": None}),
        ({**GOOD, "symbols": ["NOPE"]}, {"stocks": None}),
        ({**GOOD, "position_fraction": "2"}, {"position_fraction": None}),
        ({**GOOD, "stop_loss_type": "sometimes"}, {"stop_loss_type": None}),
        ({**GOOD, "take_profit_type": "r_multiple", "take_profit_value": "2"}, {"take_profit_type": None}),
        ({**GOOD, "risk_settings": {"max_drawdown": "lots"}}, {"risk_settings": None}),
        ({"name": "x"}, {"strategy_class": None}),
    ],
)
def test_bad_strategy_payloads_are_400_with_field_errors(stored_bars, trader_client, payload, errors):
    response = trader_client.post("/api/strategies/", payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    for field, expected in errors.items():
        assert field in body, body
        if isinstance(expected, dict):
            for sub, messages in expected.items():
                assert sub in body[field]
                if messages:
                    assert body[field][sub] == messages
    assert not Strategy.objects.exists()


def test_activate_without_stocks_is_400(stored_bars, trader_client):
    response = trader_client.post("/api/strategies/", {**GOOD, "symbols": []}, format="json")
    response = trader_client.post(f"/api/strategies/{response.json()['id']}/activate/")
    assert response.status_code == 400 and "stocks" in response.json()


def test_signals_events_sweeps_are_readable(stored_bars, viewer_client):
    for url in ("/api/signals/", "/api/events/", "/api/sweeps/"):
        assert viewer_client.get(url).status_code == 200
