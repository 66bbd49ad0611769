"""The order pipeline (order_lifecycle, broker_reports, exits) through the IBKR broker and the fake IB.

The same services drive both brokers; these tests show that, for the same fills, IBKR
produces the same orders, fills and trades as the paper broker, and that IB's own
situations (partial fills, rejections, disconnects, restarts) land in the database once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from execution import broker_reports, exits, order_lifecycle
from execution.brokers.ibkr import IBKRBroker
from execution.brokers.paper import PaperBroker
from execution.costs import CostModel
from execution.models import Fill, Order, Trade
from execution.order_lifecycle import OrderIntent
from execution.tests.conftest import bar
from execution.tests.fake_ib import FakeIB, fake_with_aapl, quick_broker
from strategies.models import StrategyEvent

pytestmark = pytest.mark.django_db
D = Decimal
T = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def protected(strategy):
    strategy.stop_loss_type, strategy.stop_loss_value = "percent", D("5")
    strategy.take_profit_type, strategy.take_profit_value = "percent", D("10")
    strategy.save()
    return strategy


@pytest.fixture
def fake() -> FakeIB:
    return fake_with_aapl()


@pytest.fixture
def ib(fake) -> IBKRBroker:
    broker = quick_broker(fake)
    broker.connect()
    return broker


def apply_all(broker, rounds: int = 3) -> list:
    """What the engine does with broker events: apply each, then the follow-ups."""
    touched, events = [], []
    for _ in range(rounds):
        batch = broker.poll_events()
        events += batch
        for event in batch:
            result = broker_reports.apply_event(event)
            if isinstance(result, Order):
                touched.append(result)
            elif isinstance(result, Fill):
                touched.append(result.order)
    exits.after_events(touched, broker)
    return events


def enter(stock, strategy, broker, cid: str, qty: str = "10") -> Order:
    order, created = order_lifecycle.create_order(
        OrderIntent(stock=stock, side="buy", quantity=D(qty), strategy=strategy, client_order_id=cid),
        broker_name=broker.name,
    )
    assert created
    return order_lifecycle.submit_order(order, broker)


def trades_snapshot() -> list[tuple]:
    return [
        (
            t.direction,
            t.quantity,
            t.entry_price,
            t.exit_price,
            t.exit_reason,
            t.stop_loss,
            t.take_profit,
            t.fees,
            t.realized_pnl,
            t.r_multiple,
            t.entry_time,
            t.exit_time,
        )
        for t in Trade.objects.order_by("entry_time", "id")
    ]


def orders_snapshot() -> dict[str, tuple]:
    return {
        o.client_order_id: (
            o.purpose,
            o.side,
            o.order_type,
            o.quantity,
            o.status,
            o.filled_quantity,
            o.avg_fill_price,
        )
        for o in Order.objects.all()
    }


def fills_by_order() -> dict[str, list[tuple]]:
    result: dict[str, list[tuple]] = {}
    for f in Fill.objects.select_related("order").order_by("timestamp", "id"):
        result.setdefault(f.order.client_order_id, []).append(
            (f.quantity, f.price, f.commission, f.timestamp)
        )
    return result


def test_same_fills_give_the_same_trades_as_the_paper_broker(stock, protected, fake, ib):
    # 1) The paper broker: a stop-loss exit, then a take-profit exit.
    paper = PaperBroker(starting_cash=D("100000"), cost_model=CostModel(commission="per_share"))
    paper.connect()
    paper.poll_events()
    paper.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    enter(stock, protected, paper, "E1")
    day = bar(1, 100, 111, 94, 100)
    paper.on_bar_open("AAPL", day)
    apply_all(paper, 1)
    paper.on_bar("AAPL", day)
    apply_all(paper, 1)
    enter(stock, protected, paper, "E2")
    day = bar(2, 101, 112, 100, 105)
    paper.on_bar_open("AAPL", day)
    apply_all(paper, 1)
    paper.on_bar("AAPL", day)
    apply_all(paper, 1)
    expected_trades = trades_snapshot()
    expected_orders = orders_snapshot()
    paper_fills = fills_by_order()
    assert [t[4] for t in expected_trades] == ["stop_loss", "take_profit"]
    assert set(paper_fills) == {"E1", "SL-E1", "E2", "TP-E2"}

    Fill.objects.all().delete()
    Order.objects.all().delete()
    Trade.objects.all().delete()

    # 2) IBKR through the fake IB, executing the same fills at the same prices and times.
    def execute(cid: str) -> None:
        for qty, price, commission, at in paper_fills[cid]:
            fake.fill(cid, float(qty), float(price), commission=float(commission), at=at)
        apply_all(ib)

    enter(stock, protected, ib, "E1")
    execute("E1")
    sl, tp = (Order.objects.get(client_order_id=c) for c in ("SL-E1", "TP-E1"))
    assert sl.status == tp.status == "submitted" and sl.broker_order_id and tp.broker_order_id
    placed = {o.orderRef: o for o in fake.placed}
    assert placed["SL-E1"].ocaGroup == placed["TP-E1"].ocaGroup != ""  # native one-cancels-other
    assert placed["SL-E1"].tif == "GTC" and placed["SL-E1"].orderType == "STP"
    execute("SL-E1")
    enter(stock, protected, ib, "E2")
    execute("E2")
    execute("TP-E2")

    assert trades_snapshot() == expected_trades
    assert orders_snapshot() == expected_orders
    assert fills_by_order() == paper_fills
    assert all(o.broker == "ibkr" and o.broker_order_id.isdigit() for o in Order.objects.all())
    assert not StrategyEvent.objects.filter(event_type="order.illegal_transition").exists()


def test_entry_and_exit_filled_in_parts(stock, protected, fake, ib):
    enter(stock, protected, ib, "E1")
    fake.fill("E1", 4, 100.0, commission=0.4, at=T)
    apply_all(ib)
    order = Order.objects.get(client_order_id="E1")
    assert order.status == "partially_filled" and order.filled_quantity == 4
    assert not Order.objects.filter(purpose="stop_loss").exists()  # protection after the full fill
    fake.fill("E1", 6, 101.0, commission=0.6, at=T + timedelta(seconds=5))
    apply_all(ib)
    trade = Trade.objects.get()
    assert trade.quantity == 10 and trade.entry_price == D("100.6") and trade.fees == D("1")
    assert trade.stop_loss == D("95.57")
    fake.fill("SL-E1", 3, 95.5, commission=0.3, at=T + timedelta(minutes=5))
    apply_all(ib)
    trade.refresh_from_db()
    assert trade.status == "open"
    assert Order.objects.get(client_order_id="SL-E1").status == "partially_filled"
    fake.fill("SL-E1", 7, 95.4, commission=0.7, at=T + timedelta(minutes=6))
    apply_all(ib)
    trade.refresh_from_db()
    assert trade.status == "closed" and trade.exit_reason == "stop_loss"
    assert trade.exit_price == D("95.43") and trade.fees == D("2")
    assert trade.realized_pnl == D("-53.7")  # (95.43 - 100.6) * 10 - 2
    assert Order.objects.get(client_order_id="TP-E1").status == "cancelled"
    assert Fill.objects.count() == 4


def test_rejections_keep_ibs_message_and_code(stock, strategy, fake, ib):
    fake.rejections["E1"] = (201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. INSUFFICIENT EQUITY")
    order = enter(stock, strategy, ib, "E1")
    assert order.status == "rejected"
    assert "INSUFFICIENT EQUITY" in order.reject_reason and "code 201" in order.reject_reason
    apply_all(ib)

    later = enter(stock, strategy, ib, "E2")
    assert later.status == "submitted"
    fake.reject("E2", 201, "Order rejected - reason:Trading is halted")
    apply_all(ib)
    later.refresh_from_db()
    assert later.status == "rejected" and later.reject_reason == "Order rejected - reason:Trading is halted"
    assert not StrategyEvent.objects.filter(event_type="order.illegal_transition").exists()


def test_unknown_contract_rejects_the_order(stock, strategy, fake, ib):
    fake.contracts.clear()
    order = enter(stock, strategy, ib, "E1")
    assert order.status == "rejected" and "no security definition" in order.reject_reason
    assert fake.placed == []


def test_fill_during_a_disconnect_is_applied_once(stock, strategy, fake, ib):
    order = enter(stock, strategy, ib, "E1")
    apply_all(ib)
    fake.listening = False
    fake.drop_connection()
    apply_all(ib)
    assert StrategyEvent.objects.filter(event_type="broker.disconnected").exists()
    # Submissions pause: the next order stays pending_submit, certainly not sent.
    waiting = enter(stock, strategy, ib, "E2")
    assert waiting.status == "pending_submit"
    fake.fill("E1", 10, 100.0, commission=1.0, at=T)
    fake.restore()
    apply_all(ib)
    assert StrategyEvent.objects.filter(event_type="broker.connected").exists()
    order.refresh_from_db()
    assert order.status == "filled" and order.filled_quantity == 10 and order.commission == D("1")
    # What a reconciliation on reconnect does: the executions again, and nothing changes.
    for report in ib.executions(T - timedelta(hours=1)):
        assert broker_reports.apply_fill(report) is None
    apply_all(ib)
    assert Fill.objects.count() == 1 and Trade.objects.get().quantity == 10
    # The order that waited goes out now.
    assert order_lifecycle.submit_order(waiting, ib).status == "submitted"
    assert [o.orderRef for o in fake.placed] == ["E1", "E2"]


def test_submit_lost_in_a_disconnect_is_resolved_by_a_query(stock, strategy, fake, ib):
    fake.ack = False
    order = enter(stock, strategy, ib, "E1")
    assert order.status == "unknown"
    # The order did reach IB; the acknowledgement was lost with the connection.
    fake.ack = True
    server = fake.orders[-1]
    server.order.permId = 424242
    server.status = "Submitted"
    fake.drop_connection()
    apply_all(ib)  # reconnects, re-synchronises
    order = order_lifecycle.resolve_unknown(order, ib)
    assert order.status == "submitted" and order.broker_order_id == "424242"
    assert len(fake.placed) == 1
