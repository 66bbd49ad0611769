"""The IBKR broker's less travelled paths: group rejections, OCA pairs, races, odd orders."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from execution.brokers.base import (
    BracketRequest,
    BrokerUnavailable,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
    SubmitOutcomeUnknown,
)
from execution.brokers.ibkr import IBKRBroker
from execution.tests.fake_ib import FakeIB, fake_with_aapl, quick_broker

D = Decimal


@pytest.fixture
def fake() -> FakeIB:
    return fake_with_aapl()


@pytest.fixture
def broker(fake) -> IBKRBroker:
    b = quick_broker(fake)
    b.connect()
    b.poll_events()
    return b


def req(cid: str, side: str = "buy", kind: str = "market", **kw) -> OrderRequest:
    return OrderRequest(cid, "AAPL", side, D("10"), order_type=kind, **kw)


def drain(broker: IBKRBroker) -> list:
    return broker.poll_events() + broker.poll_events() + broker.poll_events()


def test_a_rejected_child_rejects_the_bracket_and_cancels_the_rest(broker, fake):
    fake.rejections["B-sl"] = (201, "Order rejected - reason:Stop price is too close to the market")
    bracket = BracketRequest(
        parent=req("B", kind="limit", limit_price=D("100")),
        take_profit=req("B-tp", "sell", "limit", limit_price=D("110")),
        stop_loss=req("B-sl", "sell", "stop", stop_price=D("99.99")),
    )
    with pytest.raises(OrderRejected, match=r"B-sl \(and its group\).*too close") as err:
        broker.submit_bracket(bracket)
    assert err.value.code == 201
    assert fake.calls["cancelOrder"] == 2  # the parent and the take-profit
    # The exception reported the group's fate: no status events repeat or contradict it.
    assert [e for e in drain(broker) if isinstance(e, OrderUpdate)] == []


def test_oco_pair_is_one_group_of_independent_orders(broker, fake):
    acks = broker.submit_oco(
        [req("SL", "sell", "stop", stop_price=D("95")), req("TP", "sell", "limit", limit_price=D("110"))]
    )
    sl, tp = fake.placed
    assert sl.ocaGroup == tp.ocaGroup == "oca-SL" and sl.ocaType == tp.ocaType == 2
    assert sl.transmit and tp.transmit and sl.parentId == tp.parentId == 0
    assert [a.client_order_id for a in acks] == ["SL", "TP"]
    assert broker.submit_oco([]) == []
    fake.fill("TP", 10, 110.0)
    events = drain(broker)
    statuses = {(e.client_order_id, e.status) for e in events if isinstance(e, OrderUpdate)}
    assert {("TP", "filled"), ("SL", "cancelled")} <= statuses


def test_request_timeouts_and_socket_races_are_unavailable(broker, fake, monkeypatch):
    def timeout(*_a, **_k):
        raise TimeoutError()

    monkeypatch.setattr(fake, "reqCompletedOrders", timeout)
    with pytest.raises(BrokerUnavailable, match="IB did not answer completed orders"):
        broker.find_order("nope")

    def dead(*_a, **_k):
        raise ConnectionError("Not connected")

    monkeypatch.setattr(fake, "placeOrder", dead)
    with pytest.raises(BrokerUnavailable, match="Not connected to IB"):
        broker.submit(req("E-1"))
    monkeypatch.setattr(fake.client, "getReqId", dead)
    with pytest.raises(BrokerUnavailable):
        broker.submit_oco(
            [req("A", "sell", "stop", stop_price=D("1")), req("B", "sell", "limit", limit_price=D("2"))]
        )


def test_cancel_meeting_a_dead_socket(broker, fake, monkeypatch):
    broker.submit(req("L", kind="limit", limit_price=D("90")))

    def dead(*_a, **_k):
        raise ConnectionError("Not connected")

    monkeypatch.setattr(fake, "cancelOrder", dead)
    with pytest.raises(BrokerUnavailable):
        broker.cancel("L")


def test_pending_order_lists_as_submitted_and_manual_orders_are_not_ours(broker, fake):
    fake.ack_delay = 1000
    with pytest.raises(SubmitOutcomeUnknown):
        broker.submit(req("E-1"))
    manual = fake.add_open_order("", "AAPL", quantity=5, order_id=77, client_id=0)
    fake.drop_connection()
    broker.poll_events()  # reconnects: IB's open orders now include the manual one
    listed = {o.client_order_id: o for o in broker.open_orders()}
    assert listed[""].broker_order_id == str(manual.order.permId)
    # a status of a manual TWS order is not an event of this platform
    trade = next(t for t in fake.trades() if t.order.orderRef == "")
    fake.orderStatusEvent.emit(trade)
    assert [e for e in broker.poll_events() if isinstance(e, OrderUpdate) and not e.client_order_id] == []


def test_pending_submit_lists_as_submitted(broker, fake):
    fake.ack_delay = 1000
    with pytest.raises(SubmitOutcomeUnknown):
        broker.submit(req("E-1"))
    (order,) = broker.open_orders()
    assert (order.client_order_id, order.status, order.broker_order_id) == ("E-1", "submitted", "")


def test_nothing_after_a_final_status(broker, fake, caplog):
    caplog.set_level(logging.INFO, logger="execution.brokers.ibkr")
    broker.submit(req("L", kind="limit", limit_price=D("90")))
    broker.cancel("L")
    drain(broker)
    trade = fake.trades()[-1]
    trade.orderStatus.status = "Submitted"
    fake.orderStatusEvent.emit(trade)
    assert broker.poll_events() == []
    assert "after final" in caplog.text


def test_journal_failure_is_logged_not_raised(fake, caplog):
    broker = IBKRBroker("127.0.0.1", 4002, 7, ib=fake)  # default sink: the database, not allowed here
    broker.connect()
    fake.error(-1, 100, "Max rate of messages per second has been exceeded.")
    broker.poll_events()
    assert "could not journal IBKR notice pacing_violation" in caplog.text


def test_rejection_at_submit_waits_for_the_reason_that_follows(broker, fake):
    fake.rejections["E-1"] = (201, "Order rejected - reason:Exchange is closed")
    fake.split_rejection = True
    with pytest.raises(OrderRejected, match="Exchange is closed") as err:
        broker.submit(req("E-1"))
    assert err.value.code == 201


def test_rejection_without_a_reason_still_rejects(broker, fake, monkeypatch):
    fake.rejections["E-1"] = (201, "never delivered")
    monkeypatch.setattr(fake, "_error_on_order", lambda *a: None)  # IB says "Inactive" only
    with pytest.raises(OrderRejected, match="E-1: rejected by IB") as err:
        broker.submit(req("E-1"))
    assert err.value.code is None
