from datetime import timedelta
from decimal import Decimal

import pytest

from execution import selectors
from execution.equity import record_equity_snapshot
from execution.models import EquitySnapshot, Trade
from marketdata.models import Bar

from .conftest import T0

pytestmark = pytest.mark.django_db


def test_positions_equity_and_curve(stock, strategy, broker):
    Bar.objects.create(
        stock=stock, timeframe="1day", timestamp=T0, open=1, high=1, low=1, close=Decimal("110")
    )
    Trade.objects.create(
        strategy=strategy,
        stock=stock,
        entry_time=T0,
        entry_price=Decimal("100"),
        quantity=10,
        fees=Decimal("1"),
    )
    Trade.objects.create(
        strategy=strategy,
        stock=stock,
        direction="short",
        entry_time=T0,
        entry_price=Decimal("120"),
        quantity=1,
    )
    Trade.objects.create(
        strategy=strategy,
        stock=stock,
        entry_time=T0,
        entry_price=100,
        quantity=1,
        status="closed",
        exit_time=T0,
        exit_price=105,
        realized_pnl=Decimal("5"),
    )
    (long, short) = sorted(selectors.open_positions(), key=lambda p: p.direction)
    assert long.unrealized_pnl == Decimal("100") and long.market_value == Decimal("1100")
    assert short.unrealized_pnl == Decimal("10") and long.strategy_id == strategy.pk
    assert selectors.open_positions(strategy) and not selectors.open_positions(strategy.pk + 1)
    equity = selectors.equity_now()
    assert equity.realized_pnl == Decimal("5") and equity.unrealized_pnl == Decimal("110")
    assert equity.open_positions == 2
    assert equity.equity == Decimal("10000") + 5 - 1 + 110
    snap = record_equity_snapshot(T0)
    assert snap.equity == equity.equity
    snap = record_equity_snapshot(T0, broker.account())  # the same time again: replaced
    assert EquitySnapshot.objects.count() == 1 and snap.equity == Decimal("10000")
    for i in range(1, 5):
        EquitySnapshot.objects.create(timestamp=T0 + timedelta(days=i), equity=10000 + i, cash=0)
    assert len(selectors.equity_curve()) == 5
    assert len(selectors.equity_curve(start=T0 + timedelta(days=2))) == 3
    assert len(selectors.equity_curve(end=T0 + timedelta(days=1))) == 2
    thinned = selectors.equity_curve(max_points=2)
    assert thinned[0][0] == T0 and thinned[-1][0] == T0 + timedelta(days=4)
