"""The live engine with BROKER=ibkr, against the fake IB.

"The engine trades through IBKR exactly as through the paper broker: the same trades for
the same fills." The engine replays a fixed period twice: once with the paper broker,
once with the IBKR broker on the fake IB, whose "exchange" executes each order exactly as
the paper broker did (same bar, quantity, price and commission) and whose account
reports what the paper account reported. Everything else (signals, sizing, risk, order
pipeline, state machine, trade bookkeeping, reconciliation) is the engine's own code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from execution.brokers.base import AccountSnapshot
from execution.brokers.ibkr import IBKRBroker
from execution.brokers.paper import PaperBroker
from execution.costs import CostModel
from execution.models import ExecutionState, Fill, Order, Trade
from execution.tests.fake_ib import FakeIB
from marketdata.models import Bar, Stock
from strategies.models import Strategy, StrategyEvent, TradeSignal

pytestmark = pytest.mark.django_db
engine_core = pytest.importorskip("trading.engine.loop")

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 120


def make_market() -> Strategy:
    """One stock whose price swings (so moving averages cross) and one strategy on it."""
    stock = Stock.objects.create(symbol="AAPL", name="Apple", exchange="NASDAQ")
    bars = []
    for i in range(DAYS):
        mid = 100 + 10 * math.sin(i / 6) + i * 0.05
        o = round(mid + 0.3 * math.sin(i), 2)
        c = round(mid + 0.4 * math.cos(i), 2)
        bars.append(
            Bar(
                stock=stock,
                timeframe="1day",
                timestamp=T0 + timedelta(days=i),
                open=Decimal(str(o)),
                high=Decimal(str(round(max(o, c) + 1.5, 2))),
                low=Decimal(str(round(min(o, c) - 1.5, 2))),
                close=Decimal(str(c)),
                volume=100000,
            )
        )
    Bar.objects.bulk_create(bars)
    strategy = Strategy.objects.create(
        name="sma swing",
        strategy_class="sma_crossover",
        parameters={"fast": 5, "slow": 15},
        active=True,
        stop_loss_type="percent",
        stop_loss_value=Decimal("1.5"),
        take_profit_type="percent",
        take_profit_value=Decimal("8"),
    )
    strategy.stocks.add(stock)
    return strategy


class RecordingPaper(PaperBroker):
    """The paper broker, remembering the account snapshots it gave the engine."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.snapshots: list[AccountSnapshot] = []

    def account(self) -> AccountSnapshot:
        snapshot = super().account()
        self.snapshots.append(snapshot)
        return snapshot


class ExchangeIBKR(IBKRBroker):
    """The IBKR broker on a fake IB whose exchange repeats the paper run's executions.

    The engine tells every broker when a bar opens and closes (real brokers ignore it);
    here those moments drive the fake exchange, so each order fills on the bar the paper
    broker filled it, before the engine polls for events, as a live market would.
    """

    def __init__(self, fake: FakeIB, executions: dict[str, list[tuple]], snapshots: list[AccountSnapshot]):
        super().__init__(
            "127.0.0.1", 4002, 7, ib=fake, ack_timeout=0.5, fill_wait=0.5, notice_sink=lambda *a: None
        )
        self.fake = fake
        self.script = {cid: list(fills) for cid, fills in executions.items()}
        self.snapshots = list(snapshots)

    def _execute(self, symbol: str, bar: dict) -> None:
        for server in list(self.fake.orders):
            if server.done or not server.order.permId or server.contract.symbol != symbol:
                continue
            fills = self.script.get(server.order.orderRef, [])
            while fills and fills[0][3] == bar["timestamp"]:
                qty, price, commission, at = fills.pop(0)
                self.fake.fill(server.order.orderRef, float(qty), float(price), float(commission), at=at)

    def on_bar_open(self, symbol: str, bar: dict) -> None:
        self._execute(symbol, bar)

    def on_bar(self, symbol: str, bar: dict) -> None:
        self._execute(symbol, bar)

    def account(self) -> AccountSnapshot:
        if self.snapshots:
            paper = self.snapshots.pop(0)
            self.fake.set_account(
                NetLiquidation=str(paper.net_liquidation),
                BuyingPower=str(paper.buying_power),
                TotalCashValue=str(paper.cash),
            )
        return super().account()


def run_engine(broker, start: datetime, end: datetime) -> None:
    options = engine_core.EngineOptions(start=start, end=end, speed=None, poll_interval=0.01)
    engine = engine_core.Engine(options, broker=broker)
    engine.install_signal_handlers = lambda: None  # not the main thread's business in tests
    assert engine.run() == 0


def snapshot() -> dict[str, Any]:
    trades = [
        (
            t.direction,
            t.quantity,
            t.entry_time,
            t.entry_price,
            t.exit_time,
            t.exit_price,
            t.exit_reason,
            t.stop_loss,
            t.take_profit,
            t.fees,
            t.realized_pnl,
            t.r_multiple,
        )
        for t in Trade.objects.order_by("entry_time", "id")
    ]
    orders = sorted(
        (
            o.client_order_id,
            o.purpose,
            o.side,
            o.order_type,
            o.quantity,
            o.status,
            o.filled_quantity,
            o.avg_fill_price,
        )
        for o in Order.objects.all()
    )
    signals = sorted(TradeSignal.objects.values_list("timestamp", "signal_type", "executed"))
    return {"trades": trades, "orders": orders, "signals": signals}


def executions_by_order() -> dict[str, list[tuple]]:
    result: dict[str, list[tuple]] = {}
    for f in Fill.objects.select_related("order").order_by("timestamp", "id"):
        result.setdefault(f.order.client_order_id, []).append(
            (f.quantity, f.price, f.commission, f.timestamp)
        )
    return result


def reset_trading_tables() -> None:
    Fill.objects.all().delete()
    Order.objects.all().delete()
    Trade.objects.all().delete()
    TradeSignal.objects.all().delete()
    ExecutionState.objects.all().delete()
    StrategyEvent.objects.all().delete()


def test_engine_trades_through_ibkr_as_through_the_paper_broker(settings, tmp_path):
    settings.ENGINE_LOCK_DIR = tmp_path
    make_market()
    start, end = T0 + timedelta(days=30), T0 + timedelta(days=DAYS - 1)

    paper = RecordingPaper(starting_cash=Decimal("100000"), cost_model=CostModel(commission="per_share"))
    run_engine(paper, start, end)
    expected = snapshot()
    executions = executions_by_order()
    assert len(expected["trades"]) >= 3, "the market must make the strategy trade"
    assert {t[6] for t in expected["trades"]} == {"stop_loss", "take_profit"}

    reset_trading_tables()
    fake = FakeIB()
    fake.add_contract("AAPL", "NASDAQ", 265598)
    ib = ExchangeIBKR(fake, executions, paper.snapshots)
    run_engine(ib, start, end)

    assert snapshot() == expected
    assert executions_by_order() == executions
    assert all(o.broker == "ibkr" and o.broker_order_id.isdigit() for o in Order.objects.all())
    # Every order reached IB once, carrying its client order id.
    refs = [o.orderRef for o in fake.placed]
    assert (
        sorted(refs)
        == sorted(set(refs))
        == sorted(c[0] for c in expected["orders"] if c[5] != "pending_submit")
    )
    assert not StrategyEvent.objects.filter(severity__in=("error", "critical")).exists(), list(
        StrategyEvent.objects.filter(severity__in=("error", "critical")).values_list("event_type", "message")
    )
