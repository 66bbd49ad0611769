"""The library's events as ours: fills, brackets, commissions, statuses held for their
fills, order errors and notices (events.py, errors.py)."""

from __future__ import annotations

import logging
import time

import pytest

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    BracketRequest,
    CommissionUpdate,
    FillReport,
    OrderUpdate,
)
from execution.brokers.ibkr import IBKRBroker
from execution.tests.ibkr.support import D, drain, req, updates
from strategies.models import StrategyEvent

# --- fills and brackets -----------------------------------------------------------------


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


# --- errors and notices -----------------------------------------------------------------


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


@pytest.mark.django_db
def test_default_notice_sink_journals_an_event(fake):
    broker = IBKRBroker("127.0.0.1", 4002, 7, ib=fake)
    broker.connect()
    fake.error(-1, 100, "Max rate of messages per second has been exceeded.")
    broker.poll_events()
    event = StrategyEvent.objects.get(event_type="broker.pacing_violation")
    assert event.metadata == {"broker": "ibkr", "code": 100}
