"""The backtests API: queued runs, runs of a strategy row, validation with per-field errors."""

import pytest

from execution.models import BacktestRun

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "API trend",
    "strategy_class": "sma_crossover",
    "parameters": {"fast": 5, "slow": 20},
    "symbols": ["AAA"],
}


def test_post_backtest_runs_and_get_returns_results(stored_bars, trader_client):
    payload = {
        "strategy_class": "sma_crossover",
        "parameters": {"fast": 5, "slow": 20},
        "symbols": ["AAA", "BBB"],
        "start": "2020-03-01T00:00:00Z",
        "settings": {
            "initial_cash": 20000,
            "stop_type": "percent",
            "stop_value": 4,
            "costs": {"commission": "none"},
        },
    }
    response = trader_client.post("/api/backtests/", payload, format="json")
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    detail = trader_client.get(f"/api/backtests/{run_id}/").json()
    assert detail["status"] == "done"
    assert detail["metrics"]["initial_equity"] == 20000
    assert detail["metrics"]["start"].startswith("2020-03-01")
    assert detail["equity_curve"] and detail["trades"]
    listing = trader_client.get("/api/backtests/").json()["results"]
    assert listing[0]["id"] == run_id and "trades" not in listing[0]


def test_post_backtest_from_a_strategy_row(stored_bars, trader_client):
    strategy_id = trader_client.post("/api/strategies/", GOOD, format="json").json()["id"]
    response = trader_client.post("/api/backtests/", {"strategy": strategy_id}, format="json")
    assert response.status_code == 201, response.json()
    run = BacktestRun.objects.get(pk=response.json()["id"])
    assert run.strategy_id == strategy_id and run.symbols == ["AAA"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "strategy_class"),
        ({"strategy_class": "nope", "symbols": ["AAA"]}, "strategy_class"),
        ({"strategy_class": "sma_crossover", "symbols": ["AAA"], "parameters": {"fast": 99}}, "parameters"),
        ({"strategy_class": "sma_crossover", "symbols": []}, "symbols"),
        ({"strategy_class": "sma_crossover", "symbols": ["ZZZ"]}, "symbols"),
        ({"strategy_class": "sma_crossover", "symbols": ["AAA"], "timeframe": "1h"}, "symbols"),
        (
            {"strategy_class": "sma_crossover", "symbols": ["AAA"], "settings": {"initial_cash": "lots"}},
            "settings",
        ),
        (
            {"strategy_class": "sma_crossover", "symbols": ["AAA"], "settings": {"costs": {"commission": 3}}},
            "settings",
        ),
        ({"strategy_class": "sma_crossover", "symbols": ["AAA"], "settings": {"warp": 9}}, "settings"),
        ({"strategy_class": "sma_crossover", "symbols": ["AAA"], "start": "yesterday"}, "start"),
        ({"strategy_class": "sma_crossover", "symbols": ["AAA"], "timeframe": "3sec"}, "timeframe"),
        (
            {
                "strategy_class": "sma_crossover",
                "symbols": ["AAA"],
                "start": "2021-01-01T00:00:00Z",
                "end": "2020-01-01T00:00:00Z",
            },
            "end",
        ),
        ({"strategy": 999999}, "strategy"),
        ([1, 2, 3], "non_field_errors"),
    ],
)
def test_bad_backtest_payloads_are_400(stored_bars, trader_client, payload, field):
    response = trader_client.post("/api/backtests/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not BacktestRun.objects.exists()


def test_backtest_with_no_bars_in_period_fails_cleanly(stored_bars, trader_client):
    payload = {"strategy_class": "sma_crossover", "symbols": ["AAA"], "start": "2030-01-01T00:00:00Z"}
    response = trader_client.post("/api/backtests/", payload, format="json")
    assert response.status_code == 202
    body = trader_client.get(f"/api/backtests/{response.json()['id']}/").json()
    assert body["status"] == "failed" and "no bars" in body["error"]
