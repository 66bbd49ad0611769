"""The IBKR broker against the fake IB: orders, brackets, events, errors, reconnects."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    BracketRequest,
    BrokerUnavailable,
    CommissionUpdate,
    ConnectionEvent,
    FillReport,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
    SubmitOutcomeUnknown,
    UnknownContract,
)
from execution.brokers.ibkr import IBKRBroker, map_status
from execution.tests.fake_ib import FakeIB

D = Decimal


@pytest.fixture
def fake() -> FakeIB:
    ib = FakeIB()
    ib.add_contract("AAPL", "NASDAQ", 265598)
    ib.add_contract("MSFT", "NASDAQ", 272093)
    return ib


@pytest.fixture
def notices() -> list:
    return []


def make_broker(fake: FakeIB, notices: list | None = None, **kwargs) -> IBKRBroker:
    account = kwargs.pop("account", "DU1234567")
    options = {
        "ack_timeout": 0.3,
        "fill_wait": 0.2,
        "reconnect_delays": (0,),
        "notice_sink": (lambda *n: notices.append(n)) if notices is not None else (lambda *n: None),
    }
    options.update(kwargs)
    return IBKRBroker("127.0.0.1", 4002, 7, account=account, ib=fake, **options)


@pytest.fixture
def ib_broker(fake, notices) -> IBKRBroker:
    broker = make_broker(fake, notices)
    broker.connect()
    events = broker.poll_events()
    assert [type(e) for e in events] == [ConnectionEvent]
    return broker


def req(cid: str, side: str = "buy", qty: str = "100", kind: str = "market", **kw) -> OrderRequest:
    return OrderRequest(cid, kw.pop("symbol", "AAPL"), side, D(qty), order_type=kind, **kw)


def drain(broker: IBKRBroker, rounds: int = 3) -> list:
    events = []
    for _ in range(rounds):
        events += broker.poll_events()
    return events


def updates(events: list, cid: str | None = None) -> list[tuple[str, Decimal]]:
    return [
        (e.status, e.filled_quantity)
        for e in events
        if isinstance(e, OrderUpdate) and (cid is None or e.client_order_id == cid)
    ]


# --- connecting -------------------------------------------------------------------------


def test_connect_resolves_the_account_and_reports_it(fake):
    broker = make_broker(fake, account="")
    assert not broker.is_connected
    broker.connect()
    assert broker.is_connected
    assert broker.account_id == "DU1234567"
    broker.connect()  # already connected: nothing happens
    assert fake.connect_calls == 1
    assert "connected" in repr(broker)


def test_connect_refused_is_one_clear_line(fake):
    fake.listening = False
    broker = make_broker(fake)
    with pytest.raises(BrokerUnavailable) as err:
        broker.connect()
    message = str(err.value)
    assert "\n" not in message
    assert "127.0.0.1:4002" in message and "nothing is listening" in message


def test_connect_handshake_timeout_names_the_api_settings(fake):
    fake.handshake = "timeout"
    with pytest.raises(BrokerUnavailable, match="ActiveX and Socket Clients.*Trusted IPs"):
        make_broker(fake).connect()


def test_connect_with_a_client_id_in_use(fake):
    fake.handshake = "client_id_in_use"
    with pytest.raises(BrokerUnavailable, match="client id 7 is already in use"):
        make_broker(fake).connect()


def test_connect_other_failure_keeps_the_reason(fake):
    fake.handshake = "broken"
    with pytest.raises(BrokerUnavailable, match="ConnectionError: Socket connection broken.*code 507"):
        make_broker(fake).connect()


def test_connect_to_an_account_the_login_does_not_have(fake):
    broker = make_broker(fake, account="U999")
    with pytest.raises(BrokerUnavailable, match="IBKR_ACCOUNT=U999 is not an account"):
        broker.connect()
    assert not fake.isConnected()


def test_several_accounts_use_the_first(fake, caplog):
    caplog.set_level(logging.DEBUG, logger="execution.brokers.ibkr")
    fake.accounts = ["DU1", "DU2"]
    broker = make_broker(fake, account="")
    broker.connect()
    assert broker.account_id == "DU1"
    assert "set IBKR_ACCOUNT" in caplog.text


def test_real_ib_against_a_port_nobody_listens_on_fails_fast():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    broker = IBKRBroker("127.0.0.1", port, 99, connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="nothing is listening"):
        broker.connect()
    assert time.monotonic() - started < 2
    assert not broker.is_connected


def test_ensure_event_loop_replaces_a_closed_loop():
    loop = ibc.ensure_event_loop()
    assert not loop.is_closed()
    loop.close()
    fresh = ibc.ensure_event_loop()
    assert fresh is not loop and not fresh.is_closed()


# --- orders ------------------------------------------------------------------------------


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


# --- fills and brackets ------------------------------------------------------------------


def bracket() -> BracketRequest:
    return BracketRequest(
        parent=req("B-1", kind="limit", limit_price=D("100")),
        take_profit=req("B-1-tp", side="sell", kind="limit", limit_price=D("110"), time_in_force="gtc"),
        stop_loss=req("B-1-sl", side="sell", kind="stop", stop_price=D("95"), time_in_force="gtc"),
    )


def test_bracket_is_one_group_transmitted_by_its_last_order(ib_broker, fake):
    acks = ib_broker.submit_bracket(bracket())
    parent, tp, sl = fake.placed
    assert [o.transmit for o in fake.placed] == [False, False, True]
    assert tp.parentId == parent.orderId and sl.parentId == parent.orderId
    assert tp.ocaGroup == sl.ocaGroup == "oca-B-1" and tp.ocaType == sl.ocaType == 2
    assert parent.ocaGroup == ""
    assert [a.client_order_id for a in acks] == ["B-1", "B-1-tp", "B-1-sl"]
    assert all(a.broker_order_id for a in acks)
    assert len({a.broker_order_id for a in acks}) == 3


def test_bracket_filled_in_parts(ib_broker, fake):
    ib_broker.submit_bracket(bracket())
    assert updates(drain(ib_broker)) == [("submitted", 0)] * 3
    fake.fill("B-1", 40, 99.9, commission=0.4)
    fake.fill("B-1", 60, 100.0, commission=0.6)
    events = drain(ib_broker)
    fills = [e for e in events if isinstance(e, FillReport)]
    assert [(f.client_order_id, f.quantity, f.price, f.commission, f.side) for f in fills] == [
        ("B-1", D("40"), D("99.9"), D("0.4"), "buy"),
        ("B-1", D("60"), D("100"), D("0.6"), "buy"),
    ]
    # Every status comes after the fills it counts, and commissions ride on the fill.
    kinds = [(type(e).__name__, getattr(e, "status", None)) for e in events]
    assert kinds == [
        ("FillReport", None),
        ("OrderUpdate", "partially_filled"),
        ("FillReport", None),
        ("OrderUpdate", "filled"),
    ]
    final = [e for e in events if isinstance(e, OrderUpdate)][-1]
    assert final.filled_quantity == D("100") and final.avg_fill_price == D("99.96")
    assert not any(isinstance(e, CommissionUpdate) for e in events)

    fake.fill("B-1-tp", 30, 110.0)
    fake.fill("B-1-tp", 70, 110.0)
    events = drain(ib_broker)
    assert updates(events, "B-1-tp") == [("partially_filled", D("30")), ("filled", D("100"))]
    assert updates(events, "B-1-sl") == [("cancelled", 0)]
    assert [e.side for e in events if isinstance(e, FillReport)] == ["sell", "sell"]
    assert ib_broker.positions() == []


def test_execution_before_status_keeps_the_order(ib_broker, fake):
    fake.status_first = False
    ib_broker.submit(req("E-1"))
    fake.fill("E-1", 100, 50.0)
    events = drain(ib_broker)
    assert [type(e).__name__ for e in events] == ["OrderUpdate", "FillReport", "OrderUpdate"]


def test_status_without_its_execution_is_held_then_released(ib_broker, fake, caplog):
    caplog.set_level(logging.DEBUG, logger="execution.brokers.ibkr")
    ib_broker.submit(req("E-1"))
    drain(ib_broker)
    trade = fake.trades()[-1]
    trade.orderStatus.status = "Filled"
    trade.orderStatus.filled = 100
    trade.orderStatus.avgFillPrice = 50.0
    fake.orderStatusEvent.emit(trade)
    assert ib_broker.poll_events() == []  # held: the execution is not in yet
    time.sleep(0.25)
    events = ib_broker.poll_events()
    assert updates(events) == [("filled", D("100"))]
    assert "executions so far 0" in caplog.text


def test_commission_arriving_after_the_fill_was_handed_out(ib_broker, fake):
    ib_broker.submit(req("E-1"))
    fake.fill("E-1", 100, 50.0)
    fake.sleep()
    trade = fake.trades()[-1]
    fill = trade.fills[0]
    fill.commissionReport.commission = 0.0
    ib_broker._tracker.commission_sent.discard(fill.execution.execId)
    events = ib_broker.poll_events()
    assert any(isinstance(e, FillReport) for e in events)
    report = ibc.CommissionReport(execId=fill.execution.execId, commission=1.25, currency="USD")
    fake.commissionReportEvent.emit(trade, fill, report)
    assert ib_broker.poll_events() == [CommissionUpdate(fill.execution.execId, D("1.25"))]
    fake.commissionReportEvent.emit(trade, fill, report)  # repeated: once only
    assert ib_broker.poll_events() == []


# --- connection loss and reconnect -----------------------------------------------------


def test_fill_during_a_disconnect_is_reported_once_on_reconnect(ib_broker, fake):
    ack = ib_broker.submit(req("E-1"))
    drain(ib_broker)
    fake.listening = False
    fake.drop_connection()
    events = ib_broker.poll_events()
    assert events == [events[0]] and isinstance(events[0], ConnectionEvent) and not events[0].connected
    assert not ib_broker.is_connected
    with pytest.raises(BrokerUnavailable):
        ib_broker.submit(req("E-2"))

    exec_id = fake.fill("E-1", 100, 123.45, commission=1.0)  # at IB, while we are away
    assert ib_broker.poll_events() == []  # reconnect refused
    fake.restore()
    events = ib_broker.poll_events()
    assert ib_broker.is_connected
    assert [type(e).__name__ for e in events] == ["FillReport", "OrderUpdate", "ConnectionEvent"]
    fill, update, connected = events
    assert (fill.execution_id, fill.quantity, fill.price, fill.commission) == (
        exec_id,
        D("100"),
        D("123.45"),
        D("1"),
    )
    assert fill.broker_order_id == ack.broker_order_id
    assert (update.status, update.filled_quantity) == ("filled", D("100"))
    assert connected.connected and "1 missed fill" in connected.message

    # Reconciliation sees the execution; the events never repeat it.
    since = datetime.now(UTC) - timedelta(hours=1)
    assert [r.execution_id for r in ib_broker.executions(since)] == [exec_id]
    assert drain(ib_broker) == []
    found = ib_broker.find_order("E-1")
    assert (found.status, found.filled_quantity, found.avg_fill_price) == ("filled", D("100"), D("123.45"))


def test_reconnect_backs_off(fake):
    broker = make_broker(fake, reconnect_delays=(30,))
    broker.connect()
    fake.listening = False
    fake.drop_connection()
    broker.poll_events()  # first attempt after the first delay: not yet
    assert fake.connect_calls == 1
    broker._session.next_attempt = 0
    assert broker.ensure_connected() is False
    assert fake.connect_calls == 2
    assert broker.ensure_connected() is False  # within the 30 s backoff: no attempt
    assert fake.connect_calls == 2
    fake.restore()
    broker._session.next_attempt = 0
    assert broker.reconnect() is True


def test_explicit_disconnect_does_not_reconnect(ib_broker, fake):
    ib_broker.disconnect()
    assert ib_broker.poll_events() == []
    assert fake.connect_calls == 1
    assert ib_broker.ensure_connected() is False


def test_ib_connectivity_lost_and_restored(ib_broker, fake):
    fake.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
    events = ib_broker.poll_events()
    (event,) = events
    assert (event.connected, event.code) == (False, 1100)
    assert event.message == (
        "IB connectivity lost (Connectivity between IB and Trader Workstation has been lost); "
        "submissions paused"
    )
    assert not ib_broker.is_connected
    with pytest.raises(BrokerUnavailable, match="1100"):
        ib_broker.submit(req("E-1"))
    assert ib_broker.ensure_connected() is False  # TWS reconnects itself
    fake.error(
        -1, 1102, "Connectivity between IB and Trader Workstation has been restored - data maintained."
    )
    (event,) = ib_broker.poll_events()
    assert event.connected and event.code == 1102
    assert ib_broker.submit(req("E-1")).broker_order_id


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (100, "Max rate of messages per second has been exceeded.", "pacing_violation"),
        (
            162,
            "Historical Market Data Service error message:API historical data query cancelled: "
            "pacing violation",
            "pacing_violation",
        ),
        (420, "Invalid Real-time Query:pacing violation", "pacing_violation"),
        (504, "Not connected", "ibkr_error"),
    ],
)
def test_non_order_errors_become_notices(ib_broker, fake, notices, code, message, kind):
    fake.error(5, code, message)
    assert ib_broker.poll_events() == []
    assert notices == [(kind, notices[0][1], code)]
    assert message in notices[0][1]


def test_informational_codes_are_quiet(ib_broker, fake, notices, caplog):
    caplog.set_level(logging.DEBUG, logger="execution.brokers.ibkr")
    fake.error(-1, 2104, "Market data farm connection is OK:usfarm")
    fake.error(-1, 2158, "Sec-def data farm connection is OK:secdefnj")
    fake.error(-1, 2157, "Sec-def data farm connection is broken:secdefnj")
    assert ib_broker.poll_events() == [] and notices == []
    assert [r.levelname for r in caplog.records if "farm" in r.getMessage()] == ["DEBUG", "DEBUG", "WARNING"]


def test_order_warning_does_not_change_the_order(ib_broker, fake):
    ack = ib_broker.submit(req("E-1"))
    fake.error(
        ack.session_order_id,
        399,
        "Order Message: Warning: your order will not be placed at the exchange until 09:30",
    )
    assert updates(drain(ib_broker)) == [("submitted", 0)]


def test_failed_cancel_decides_nothing(ib_broker, fake):
    ib_broker.submit(req("E-1"))
    fake.fill("E-1", 100, 10.0)
    drain(ib_broker)
    server = fake.orders[-1]
    fake._error_on_order(
        server, 10148, "OrderId 1 that needs to be cancelled cannot be cancelled, state: Filled."
    )
    assert updates(drain(ib_broker)) == []


# --- restart: what IB has that this process did not send --------------------------------


def test_restart_with_orders_open_at_the_broker(fake):
    old = fake.add_open_order("E-old", "AAPL", quantity=10, limit_price=150.0, order_id=3, client_id=7)
    done = fake.add_open_order("E-done", "MSFT", quantity=5, limit_price=300.0, order_id=4, client_id=7)
    fake.fill("E-done", 5, 299.5, commission=0.35, at=datetime.now(UTC) - timedelta(minutes=5))
    broker = make_broker(fake)
    broker.connect()
    drain(broker)

    (open_order,) = broker.open_orders()
    assert open_order.client_order_id == "E-old"
    assert open_order.broker_order_id == str(old.order.permId)
    assert (open_order.status, open_order.symbol, open_order.side, open_order.quantity) == (
        "submitted",
        "AAPL",
        "buy",
        D("10"),
    )
    assert open_order.order_type == "limit" and open_order.session_order_id == 3

    found = broker.find_order("E-done")
    assert found.status == "filled" and found.filled_quantity == D("5") and found.avg_fill_price == D("299.5")
    assert found.broker_order_id == str(done.order.permId)
    assert broker.find_order("never-sent") is None

    (report,) = broker.executions(datetime.now(UTC) - timedelta(hours=1))
    assert (report.client_order_id, report.commission, report.side) == ("E-done", D("0.35"), "buy")
    assert broker.executions(datetime.now(UTC)) == []

    # The adopted order goes on living: its fill comes as usual, and new ids do not collide.
    fake.fill("E-old", 10, 149.0)
    events = drain(broker)
    assert [type(e).__name__ for e in events] == ["FillReport", "OrderUpdate"]
    ack = broker.submit(req("E-new"))
    assert ack.session_order_id > 4


def test_position_and_account_from_the_broker(ib_broker, fake):
    fake.add_position("MSFT", 50, 301.25)
    fake.add_position("TSLA", -10, 200.0)
    positions = {p.symbol: p for p in ib_broker.positions()}
    assert positions["MSFT"].quantity == D("50") and positions["MSFT"].avg_cost == D("301.25")
    assert positions["TSLA"].quantity == D("-10")

    snapshot = ib_broker.account()
    assert snapshot.net_liquidation == D("100000.00") and snapshot.buying_power == D("400000.00")
    assert snapshot.cash == D("100000.00") and snapshot.currency == "USD"
    assert snapshot.extra["AvailableFunds"] == "100000.00"
    assert ib_broker.server_time() == fake.server_time


def test_account_without_values_is_unavailable(ib_broker, fake):
    del fake.account_values["BuyingPower"]
    with pytest.raises(BrokerUnavailable, match="no BuyingPower"):
        ib_broker.account()
    fake.account_values["BuyingPower"] = "n/a"
    with pytest.raises(Exception, match="not a number"):
        ib_broker.account()


def test_status_mapping():
    assert map_status("PendingSubmit", D(0)) is None
    assert map_status("PendingCancel", D(0)) is None
    assert map_status("PreSubmitted", D(0)) == "submitted"
    assert map_status("Submitted", D(5)) == "partially_filled"
    assert map_status("Filled", D(5)) == "filled"
    assert map_status("ApiCancelled", D(0)) == "cancelled"
    assert map_status("Cancelled", D(0), 201) == "rejected"
    assert map_status("Cancelled", D(3), 201) == "cancelled"
    assert map_status("Cancelled", D(0), 161) is None
    assert map_status("Inactive", D(0)) == "rejected"
    assert map_status("Inactive", D(2)) == "cancelled"


@pytest.mark.django_db
def test_default_notice_sink_journals_an_event(fake):
    from strategies.models import StrategyEvent

    broker = IBKRBroker("127.0.0.1", 4002, 7, ib=fake)
    broker.connect()
    fake.error(-1, 100, "Max rate of messages per second has been exceeded.")
    broker.poll_events()
    event = StrategyEvent.objects.get(event_type="broker.pacing_violation")
    assert event.metadata == {"broker": "ibkr", "code": 100}


def test_rejection_waits_briefly_for_the_error_that_explains_it(ib_broker, fake):
    ack = ib_broker.submit(req("E-1"))
    drain(ib_broker)
    server = fake.orders[-1]
    server.status = "Inactive"
    fake._status_message(server)
    assert ib_broker.poll_events() == []  # "Inactive" alone: the reason is on its way
    fake.error(ack.session_order_id, 201, "Order rejected - reason:Stock is not shortable")
    (update,) = ib_broker.poll_events()
    assert (update.status, update.code, update.message) == (
        "rejected",
        201,
        "Order rejected - reason:Stock is not shortable",
    )
