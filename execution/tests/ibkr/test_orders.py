"""Placing, refusing, acknowledging, rejecting and cancelling orders (broker.py, mapping.py)."""

from __future__ import annotations

import pytest

from execution.brokers.base import (
    BracketRequest,
    BrokerUnavailable,
    OrderRejected,
    OrderUpdate,
    SubmitOutcomeUnknown,
    UnknownContract,
)
from execution.tests.ibkr.support import D, drain, make_broker, req, updates

# --- orders -----------------------------------------------------------------------------


def test_market_order_carries_the_client_id_and_returns_perm_id(ib_broker, fake):
    ack = ib_broker.submit(req("E-1"))
    order = fake.placed[-1]
    assert order.orderRef == "E-1" and order.action == "BUY" and order.orderType == "MKT"
    assert order.tif == "DAY" and order.account == "DU1234567" and order.totalQuantity == 100
    assert ack.client_order_id == "E-1"
    assert ack.broker_order_id == str(fake.orders[-1].order.permId)
    assert ack.session_order_id == order.orderId
    events = drain(ib_broker)
    assert updates(events) == [("submitted", 0)]
    assert events[0].broker_order_id == ack.broker_order_id


@pytest.mark.parametrize(
    ("kind", "kw", "ib_type", "lmt", "aux"),
    [
        ("limit", {"limit_price": D("101.5")}, "LMT", 101.5, None),
        ("stop", {"stop_price": D("95")}, "STP", None, 95.0),
        ("stop_limit", {"limit_price": D("94.5"), "stop_price": D("95")}, "STP LMT", 94.5, 95.0),
    ],
)
def test_order_types_and_gtc(ib_broker, fake, kind, kw, ib_type, lmt, aux):
    ib_broker.submit(req(f"K-{kind}", side="sell", kind=kind, time_in_force="gtc", **kw))
    order = fake.placed[-1]
    assert order.orderType == ib_type and order.action == "SELL" and order.tif == "GTC"
    if lmt is not None:
        assert order.lmtPrice == lmt
    if aux is not None:
        assert order.auxPrice == aux


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (req("V-1", kind="limit"), "needs a limit price"),
        (req("V-2", kind="stop"), "needs a stop price"),
        (req("V-3", kind="trailing"), "not supported"),
        (req("V-4", side="short"), "not buy or sell"),
        (req("V-5", qty="0"), "quantity must be positive"),
        (req("V-6", time_in_force="ioc"), "not day or gtc"),
    ],
)
def test_invalid_orders_are_refused_before_anything_is_sent(ib_broker, fake, request_, message):
    with pytest.raises(OrderRejected, match=message):
        ib_broker.submit(request_)
    assert fake.placed == []


def test_the_same_client_order_id_is_never_sent_twice(ib_broker, fake):
    first = ib_broker.submit(req("E-1"))
    assert ib_broker.submit(req("E-1")) == first
    assert len(fake.placed) == 1


def test_an_order_already_at_ib_from_an_earlier_run_is_not_sent_again(fake):
    server = fake.add_open_order("E-1", "AAPL", quantity=100, order_id=3, client_id=7)
    broker = make_broker(fake)
    broker.connect()
    ack = broker.submit(req("E-1"))
    assert ack.broker_order_id == str(server.order.permId) and ack.session_order_id == 3
    assert fake.placed == []
    acks = broker.submit_bracket(BracketRequest(parent=req("E-1")))
    assert acks == [ack]
    with pytest.raises(SubmitOutcomeUnknown, match="already at IB"):
        broker.submit_bracket(
            BracketRequest(parent=req("E-1"), stop_loss=req("E-1-sl", "sell", kind="stop", stop_price=D("9")))
        )
    assert fake.placed == []


def test_contracts_are_qualified_once_and_keep_smart_routing(ib_broker, fake):
    ib_broker.submit(req("E-1"))
    ib_broker.submit(req("E-2"))
    assert fake.calls["reqContractDetails"] == 1
    contract = ib_broker.contract("aapl")
    assert contract.conId == 265598 and contract.exchange == "SMART" and contract.primaryExchange == "NASDAQ"


def test_unknown_symbol_is_a_clear_error(ib_broker, fake, notices):
    with pytest.raises(UnknownContract, match=r"IB has no stock ZZZZ \(USD\).*code 200"):
        ib_broker.submit(req("E-1", symbol="ZZZZ"))
    assert fake.placed == []
    ib_broker.poll_events()
    assert notices and notices[0][0] == "unknown_contract" and notices[0][2] == 200


def test_ambiguous_symbol_asks_for_the_exchange(ib_broker, fake):
    fake.add_contract("SHOP", "NYSE")
    fake.add_contract("SHOP", "TSE")
    with pytest.raises(UnknownContract, match="several stocks SHOP.*NYSE, TSE"):
        ib_broker.contract("SHOP")
    assert ib_broker.contract("SHOP", exchange="NYSE").primaryExchange == "NYSE"


def test_perm_id_arriving_late_is_waited_for(ib_broker, fake):
    fake.ack_delay = 3
    ack = ib_broker.submit(req("E-1"))
    assert ack.broker_order_id == str(fake.orders[-1].order.permId)


def test_no_acknowledgement_is_an_unknown_outcome(ib_broker, fake):
    fake.ack = False
    with pytest.raises(SubmitOutcomeUnknown, match="did not acknowledge E-1 within 0.3s"):
        ib_broker.submit(req("E-1"))
    assert len(fake.placed) == 1


def test_disconnect_during_submit_is_an_unknown_outcome(ib_broker, fake):
    fake.disconnect_on_place = True
    with pytest.raises(SubmitOutcomeUnknown, match="connection to IB lost"):
        ib_broker.submit(req("E-1"))
    fake.disconnect_on_place = False
    lost, back = ib_broker.poll_events()  # reconnects at once (no backoff in these tests)
    assert (lost.connected, back.connected) == (False, True)
    assert ib_broker.is_connected
    # The targeted query that resolves "unknown": IB never got it.
    assert ib_broker.find_order("E-1") is None


def test_rejection_at_submit_raises_with_ibs_message_and_code(ib_broker, fake):
    fake.rejections["E-1"] = (201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. INSUFFICIENT EQUITY")
    with pytest.raises(OrderRejected) as err:
        ib_broker.submit(req("E-1"))
    assert err.value.code == 201
    assert "INSUFFICIENT EQUITY" in str(err.value) and "E-1" in str(err.value)
    # Reported once, by the exception: no status event repeats it.
    assert updates(drain(ib_broker)) == []


def test_rejection_after_acknowledgement_is_an_event_with_code(ib_broker, fake):
    ib_broker.submit(req("E-1"))
    fake.reject("E-1", 201, "Order rejected - reason:The contract is not available for short sale")
    events = drain(ib_broker)
    rejected = [e for e in events if isinstance(e, OrderUpdate) and e.status == "rejected"]
    assert len(rejected) == 1
    assert rejected[0].code == 201 and "short sale" in rejected[0].message
    assert updates(events) == [("submitted", 0), ("rejected", 0)]


def test_read_only_api_rejection_says_what_to_change(ib_broker, fake):
    ib_broker.submit(req("E-1"))
    fake.reject(
        "E-1",
        321,
        "Error validating request:-'bN' : cause - The API interface is currently in Read-Only mode.",
    )
    rejected = [e for e in drain(ib_broker) if isinstance(e, OrderUpdate) and e.status == "rejected"]
    assert rejected[0].code == 321 and "untick 'Read-Only API'" in rejected[0].message


def test_submit_while_disconnected_is_unavailable_and_sends_nothing(fake):
    broker = make_broker(fake)
    with pytest.raises(BrokerUnavailable, match="Not connected"):
        broker.submit(req("E-1"))
    with pytest.raises(BrokerUnavailable):
        broker.open_orders()
    assert fake.placed == []


def test_cancel_reports_cancelled(ib_broker, fake):
    ib_broker.submit(req("L-1", kind="limit", limit_price=D("90")))
    ib_broker.cancel("L-1")
    events = drain(ib_broker)
    assert updates(events) == [("submitted", 0), ("cancelled", 0)]
    assert ib_broker.open_orders() == []
    ib_broker.cancel("L-1")  # no longer open: nothing to do
    ib_broker.cancel("nope")
    assert fake.calls["cancelOrder"] == 1


def test_cancel_while_disconnected(ib_broker, fake):
    ib_broker.submit(req("L-1", kind="limit", limit_price=D("90")))
    fake.listening = False
    fake.drop_connection()
    with pytest.raises(BrokerUnavailable):
        ib_broker.cancel("L-1")
