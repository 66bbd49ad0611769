"""The backtest and sweep commands."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from execution.models import BacktestRun, SweepRun

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_backtest_prints_a_metrics_table(stored_bars):
    out = run(
        "backtest",
        "--strategy",
        "sma_crossover",
        "--symbols",
        "AAA",
        "--from",
        "2020-02-01",
        "--param",
        "fast=5",
        "--param",
        "slow=20",
        "--setting",
        "stop_type=percent",
        "--setting",
        "stop_value=3",
        "--commission",
        "percent",
        "--slippage-bps",
        "2",
        "--short",
        "--trades",
        "3",
    )
    for label in ("Total return", "CAGR", "Sharpe ratio", "Max drawdown", "Win rate", "Profit factor", "SQN"):
        assert label in out
    assert "Buy & hold return" in out and "2020-02-01" in out
    assert "shorts allowed" in out and "reason" in out


def test_backtest_json_and_save(stored_bars):
    out = run("backtest", "--strategy", "ema_crossover", "--symbols", "AAA", "BBB", "--json", "--save")
    payload = json.loads(out)
    assert payload["inputs"]["symbols"] == ["AAA", "BBB"]
    assert payload["metrics"]["trades"] == len(payload["trades"])
    run_row = BacktestRun.objects.get(pk=payload["id"])
    assert run_row.status == "done" and run_row.metrics["trades"] == payload["metrics"]["trades"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope", "--symbols", "AAA"], "unknown strategy"),
        (["--strategy", "sma_crossover", "--symbols", "AAA", "--param", "fast"], "expected NAME=VALUE"),
        (["--strategy", "sma_crossover", "--symbols", "AAA", "--param", "fast=99"], "parameters.fast"),
        (["--strategy", "sma_crossover", "--symbols", "ZZZ"], "unknown symbol"),
        (["--strategy", "sma_crossover", "--symbols", "AAA", "--from", "soon"], "expected a date"),
        (["--strategy", "sma_crossover", "--symbols", "AAA", "--from", "2031-01-01"], "no bars"),
        (["--strategy", "sma_crossover", "--symbols", "AAA", "--setting", "initial_cash=-5"], "initial_cash"),
    ],
)
def test_backtest_bad_input(stored_bars, args, message):
    with pytest.raises(CommandError, match=message):
        run("backtest", *args)


def test_sweep_ranks_and_saves(stored_bars):
    out = run(
        "sweep",
        "--strategy",
        "sma_crossover",
        "--symbols",
        "AAA",
        "--grid",
        "fast=3:9:3",
        "--grid",
        "slow=15,25",
        "--folds",
        "2",
        "--processes",
        "2",
        "--save",
        "--rank-by",
        "total_return",
    )
    assert "6 points" in out and "walk-forward fold 2" in out and "saved as sweep" in out
    sweep = SweepRun.objects.get()
    rows = sweep.results["rows"]
    assert len(rows) == 6 and rows[0]["rank"] == 1
    returns = [r["in_sample"]["total_return"] for r in rows]
    assert returns == sorted(returns, reverse=True)
    assert "out_of_sample" in rows[0] and len(sweep.results["walk_forward"]) == 2


def test_sweep_json_skips_invalid_points(stored_bars):
    out = run(
        "sweep",
        "--strategy",
        "sma_crossover",
        "--symbols",
        "AAA",
        "--grid",
        "fast=5,30",
        "--param",
        "slow=20",
        "--split",
        "2020-09-01",
        "--json",
        "--processes",
        "1",
    )
    payload = json.loads(out)
    assert len(payload["rows"]) == 1 and payload["skipped"][0]["parameters"]["fast"] == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "fast"], "expected NAME="),
        (["--grid", "fast=1:x:2"], "must be numbers"),
        (["--grid", "fast=9:1:2"], "STEP > 0"),
        (["--grid", "speed=1,2"], "unknown parameter"),
        (["--grid", "fast=5", "--split", "1.5"], "split"),
    ],
)
def test_sweep_bad_input(stored_bars, args, message):
    with pytest.raises(CommandError, match=message):
        run("sweep", "--strategy", "sma_crossover", "--symbols", "AAA", *args)
