"""The strategy commands: check_strategy, create_demo_strategies."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from strategies.models import Strategy
from strategies.tests.test_lookahead import Peeking

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_check_strategy_ok_and_failures(stored_bars, monkeypatch):
    out = run("check_strategy", "sma_crossover", "--param", "fast=5", "--param", "slow=12", "--bars", "80")
    assert out.count("OK") == 2
    out = run("check_strategy", "donchian_breakout", "--symbol", "AAA", "--bars", "60", "--short")
    assert "AAA" in out and out.count("OK") == 2
    import strategies.management.commands.check_strategy as command

    monkeypatch.setattr(command, "get_strategy", lambda key: Peeking)
    with pytest.raises(CommandError, match="failed"):
        run("check_strategy", "peeking", "--bars", "40")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown strategy"),
        (["sma_crossover", "--param", "fast=1"], "invalid parameters"),
        (["sma_crossover", "--symbol", "ZZZ"], "unknown symbol"),
        (["sma_crossover", "--bars", "1"], "at least 2"),
        (["sma_crossover", "--symbol", "AAA", "--timeframe", "1h"], "no 1h bars"),
    ],
)
def test_check_strategy_bad_input(stored_bars, args, message):
    with pytest.raises(CommandError, match=message):
        run("check_strategy", *args)


def test_create_demo_strategies_is_idempotent(db):
    assert "no sample stocks" in run("create_demo_strategies")
    from marketdata.models import Stock

    for symbol in ("SPX", "IXIC"):
        Stock.objects.create(symbol=symbol, exchange="INDEX")
    out = run("create_demo_strategies")
    assert out.count("created demo strategy") == 4
    assert Strategy.objects.filter(active=True, timeframe="1day").count() == 4
    assert all(s.stocks.count() == 2 for s in Strategy.objects.all())
    assert "exists" in run("create_demo_strategies")
    assert Strategy.objects.count() == 4
