from decimal import Decimal

import pytest

from execution.brokers.base import (
    BracketRequest,
    BrokerError,
    BrokerUnavailable,
    FillReport,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
)
from execution.brokers.paper import PaperBroker
from execution.costs import CostModel
from execution.models import PaperFill, PaperOrder

from .conftest import bar

pytestmark = pytest.mark.django_db


def req(cid, side="buy", qty="10", **kw):
    return OrderRequest(client_order_id=cid, symbol="AAPL", side=side, quantity=Decimal(qty), **kw)


def fills(events):
    return [e for e in events if isinstance(e, FillReport)]


def statuses(events):
    return [(e.client_order_id, e.status) for e in events if isinstance(e, OrderUpdate)]


def test_market_order_fills_at_the_next_bars_open_with_costs():
    broker = PaperBroker(starting_cash="10000", cost_model=CostModel(slippage_bps=10))
    broker.connect()
    broker.on_bar("AAPL", bar(0, 99, 101, 98, 100))
    ack = broker.submit(req("m1"))
    assert ack.broker_order_id.startswith("PO")
    broker.on_bar("AAPL", bar(0, 99, 101, 98, 100))  # the same bar again: no fill
    assert not fills(broker.poll_events())
    broker.on_bar("AAPL", bar(1, 100, 102, 99, 101))
    (fill,) = fills(broker.poll_events())
    assert fill.price == Decimal("100.1")  # 10 bp slippage on a buy
    assert fill.commission == Decimal("1.00")  # IBKR minimum
    account = broker.account()
    assert account.cash == Decimal("10000") - Decimal("1001") - Decimal("1")
    assert account.net_liquidation == account.cash + 10 * Decimal("101")
    assert broker.positions()[0].quantity == Decimal("10")


def test_state_survives_a_new_broker_instance(broker):
    broker.on_bar("AAPL", bar(0, 99, 101, 98, 100))
    broker.submit(req("m1"))
    again = PaperBroker(starting_cash="1", cost_model=broker.cost_model)
    again.connect()
    assert [o.client_order_id for o in again.open_orders()] == ["m1"]
    again.on_bar("AAPL", bar(1, 100, 102, 99, 101))
    assert fills(again.poll_events())[0].price == Decimal("100")
    assert again.find_order("m1").status == "filled"
    assert [f.execution_id for f in again.executions()] == [PaperFill.objects.get().execution_id]


def test_duplicate_client_order_id_is_the_same_order(broker):
    first = broker.submit(req("dup"))
    second = broker.submit(req("dup"))
    assert first == second
    assert PaperOrder.objects.count() == 1


def test_limit_and_stop_orders_fill_when_the_bar_crosses_them(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit(req("lim", limit_price=Decimal("95"), order_type="limit"))
    broker.submit(req("stp", stop_price=Decimal("105"), order_type="stop"))
    broker.on_bar("AAPL", bar(1, 100, 104, 96, 100))
    assert not fills(broker.poll_events())
    broker.on_bar("AAPL", bar(2, 99, 106, 94, 100))
    prices = {f.client_order_id: f.price for f in fills(broker.poll_events())}
    assert prices == {"lim": Decimal("95"), "stp": Decimal("105")}


def test_gaps_fill_at_the_open(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit(req("buy"))
    broker.on_bar("AAPL", bar(1, 100, 100, 100, 100))
    broker.submit(req("stop", side="sell", order_type="stop", stop_price=Decimal("95")))
    broker.poll_events()
    broker.on_bar("AAPL", bar(2, 90, 92, 88, 91))
    (fill,) = fills(broker.poll_events())
    assert fill.price == Decimal("90")


def test_bracket_children_work_on_the_fill_bar_and_cancel_each_other(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit_bracket(
        BracketRequest(
            parent=req("p"),
            take_profit=req("tp", side="sell", order_type="limit", limit_price=Decimal("110")),
            stop_loss=req("sl", side="sell", order_type="stop", stop_price=Decimal("95")),
        )
    )
    broker.poll_events()
    # the stop and the target are both reached: the stop counts, the target is cancelled
    broker.on_bar("AAPL", bar(1, 100, 111, 94, 100))
    events = broker.poll_events()
    assert [f.client_order_id for f in fills(events)] == ["p", "sl"]
    assert ("tp", "cancelled") in statuses(events)
    assert broker.positions() == []


def test_oco_pair_after_an_entry(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit(req("e"))
    broker.on_bar_open("AAPL", bar(1, 100, 112, 99, 100))
    assert fills(broker.poll_events())[0].client_order_id == "e"
    broker.submit_oco(
        [
            req("sl", side="sell", order_type="stop", stop_price=Decimal("95")),
            req("tp", side="sell", order_type="limit", limit_price=Decimal("110")),
        ]
    )
    broker.on_bar("AAPL", bar(1, 100, 112, 99, 100))
    events = broker.poll_events()
    assert [(f.client_order_id, f.price) for f in fills(events)] == [("tp", Decimal("110"))]
    assert ("sl", "cancelled") in statuses(events)


def test_buys_are_cut_to_the_cash(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit(req("big", qty="150"))
    broker.on_bar("AAPL", bar(1, 100, 100, 100, 100))
    events = broker.poll_events()
    assert fills(events)[0].quantity == Decimal("100")
    assert ("big", "cancelled") in statuses(events)
    broker.submit(req("more", qty="1"))
    broker.on_bar("AAPL", bar(2, 100, 100, 100, 100))
    assert ("more", "cancelled") in statuses(broker.poll_events())


def test_cancel_and_errors(broker):
    broker.submit(req("c1"))
    broker.cancel("c1")
    assert ("c1", "cancelled") in statuses(broker.poll_events())
    assert broker.open_orders() == []
    with pytest.raises(BrokerError):
        broker.cancel("nope")
    with pytest.raises(OrderRejected):
        broker.submit(req("bad", qty="0"))
    with pytest.raises(OrderRejected):
        broker.submit(req("bad2", order_type="limit"))
    broker.disconnect()
    with pytest.raises(BrokerUnavailable):
        broker.submit(req("c2"))
    assert broker.find_order("nope") is None if broker.connect() is None else False


def test_short_positions(broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    broker.submit(req("s", side="sell"))
    broker.on_bar("AAPL", bar(1, 100, 100, 100, 90))
    broker.poll_events()
    assert broker.positions()[0].quantity == Decimal("-10")
    assert broker.account().net_liquidation == Decimal("10100")
