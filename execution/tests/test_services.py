from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.db import IntegrityError

from execution import broker_reports, exits, order_lifecycle
from execution.brokers.base import (
    BrokerOrder,
    BrokerUnavailable,
    CommissionUpdate,
    ConnectionEvent,
    FillReport,
    OrderRejected,
    OrderUpdate,
    SubmitOutcomeUnknown,
)
from execution.models import Fill, Order, Trade
from execution.order_lifecycle import OrderIntent
from strategies.models import StrategyEvent

from .conftest import bar

pytestmark = pytest.mark.django_db
T = datetime(2024, 1, 3, tzinfo=UTC)


def entry(stock, strategy, cid="E1", qty="10"):
    order, created = order_lifecycle.create_order(
        OrderIntent(stock=stock, side="buy", quantity=Decimal(qty), strategy=strategy, client_order_id=cid)
    )
    assert created
    return order


def drain(broker):
    """One poll of the broker's events, applied as the engine applies them."""
    applier = broker_reports.EventApplier(broker.poll_events())
    for event in applier.events:
        applier.apply(event)
    exits.after_events(applier.touched, broker)
    return applier.touched


def report(cid, exec_id, qty, price, commission=None, side="buy"):
    return FillReport(exec_id, cid, "B1", "AAPL", side, Decimal(qty), Decimal(price), T, commission)


def test_order_is_pending_submit_before_the_broker_is_called(stock, strategy, broker):
    order = entry(stock, strategy)
    seen = []

    def spy(request):
        seen.append(Order.objects.get(client_order_id=request.client_order_id).status)
        return type(broker).submit(broker, request)

    with mock.patch.object(broker, "submit", side_effect=spy):
        order_lifecycle.submit_order(order, broker)
    assert seen == ["pending_submit"]
    order.refresh_from_db()
    assert order.status == "submitted" and order.broker_order_id
    assert (
        order_lifecycle.create_order(OrderIntent(stock=stock, side="buy", quantity=1, client_order_id="E1"))[
            1
        ]
        is False
    )


def test_full_round_trip_opens_and_closes_a_trade(stock, strategy, broker):
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    order_lifecycle.submit_order(entry(stock, strategy), broker)
    broker.on_bar("AAPL", bar(1, 100, 103, 99, 102))
    drain(broker)
    trade = Trade.objects.get()
    assert trade.status == "open" and trade.entry_price == Decimal("100") and trade.quantity == 10
    exit_order = exits.send_exit_order(trade, broker, "manual")
    assert exit_order.status == "submitted"
    broker.on_bar("AAPL", bar(2, 105, 106, 104, 105))
    drain(broker)
    trade.refresh_from_db()
    assert trade.status == "closed" and trade.exit_reason == "manual"
    assert trade.exit_price == Decimal("105") and trade.realized_pnl == Decimal("50")
    types = set(StrategyEvent.objects.values_list("event_type", flat=True))
    assert {
        "order.created",
        "order.submitted",
        "order.filled",
        "fill.applied",
        "trade.opened",
        "trade.closed",
    } <= types


def test_a_fill_applied_twice_counts_once(stock, strategy):
    order = entry(stock, strategy)
    fill = report("E1", "X1", "4", "100")
    assert broker_reports.apply_fill(fill) is not None
    assert broker_reports.apply_fill(fill) is None
    order.refresh_from_db()
    assert order.filled_quantity == 4 and order.status == "partially_filled"
    broker_reports.apply_fill(report("E1", "X2", "6", "101"))
    order.refresh_from_db()
    assert order.status == "filled" and order.avg_fill_price == Decimal("100.6")
    trade = Trade.objects.get()
    assert trade.quantity == 10 and trade.entry_price == Decimal("100.6")
    assert Fill.objects.count() == 2


def test_late_commission_updates_fill_order_and_trade(stock, strategy):
    entry(stock, strategy)
    broker_reports.apply_fill(report("E1", "X1", "10", "100"))
    broker_reports.apply_commission(CommissionUpdate("X1", Decimal("1.25")))
    assert Fill.objects.get().commission == Decimal("1.25")
    assert Order.objects.get().commission == Decimal("1.25")
    assert Trade.objects.get().fees == Decimal("1.25")
    assert broker_reports.apply_commission(CommissionUpdate("nope", Decimal("1"))) is None


def test_unknown_fill_and_unknown_order_are_journaled(stock):
    assert broker_reports.apply_fill(report("ghost", "X9", "1", "1")) is None
    assert broker_reports.apply_order_update(OrderUpdate("ghost", "B", "submitted", 0, None, T)) is None
    assert StrategyEvent.objects.filter(event_type="fill.unknown_order", severity="error").exists()
    assert StrategyEvent.objects.filter(event_type="order.unknown_to_database").exists()


def test_submit_timeout_goes_to_unknown_until_a_query_resolves_it(stock, strategy, broker):
    order = entry(stock, strategy)
    with mock.patch.object(broker, "submit", side_effect=SubmitOutcomeUnknown("timed out")):
        order_lifecycle.submit_order(order, broker)
    order.refresh_from_db()
    assert order.status == "unknown"
    with mock.patch.object(
        broker, "find_order", return_value=BrokerOrder("E1", "PO9", "AAPL", "buy", 10, "submitted")
    ):
        order_lifecycle.resolve_unknown(order, broker)
    order.refresh_from_db()
    assert order.status == "submitted" and order.broker_order_id == "PO9"


def test_unknown_order_the_broker_never_got_is_cancelled(stock, strategy, broker):
    order = entry(stock, strategy)
    with mock.patch.object(broker, "submit", side_effect=SubmitOutcomeUnknown("lost")):
        order_lifecycle.submit_order(order, broker)
    order_lifecycle.resolve_unknown(order, broker)
    order.refresh_from_db()
    assert order.status == "cancelled" and "never received" in order.reject_reason


def test_rejection_and_unavailable_broker(stock, strategy, broker):
    order = entry(stock, strategy)
    with mock.patch.object(broker, "submit", side_effect=OrderRejected("no permissions", code=201)):
        order_lifecycle.submit_order(order, broker)
    order.refresh_from_db()
    assert order.status == "rejected" and "code 201" in order.reject_reason
    other = entry(stock, strategy, cid="E2")
    with mock.patch.object(broker, "submit", side_effect=BrokerUnavailable("down")):
        order_lifecycle.submit_order(other, broker)
    other.refresh_from_db()
    assert other.status == "pending_submit"
    assert StrategyEvent.objects.filter(event_type="order.submit_deferred").exists()


def test_cancel_paths(stock, strategy, broker):
    never_sent = entry(stock, strategy)
    assert order_lifecycle.cancel_order(never_sent, broker)
    never_sent.refresh_from_db()
    assert never_sent.status == "cancelled"
    assert order_lifecycle.cancel_order(never_sent, broker) is False
    sent = order_lifecycle.submit_order(entry(stock, strategy, cid="E2"), broker)
    assert order_lifecycle.cancel_order(sent, broker)
    drain(broker)
    sent.refresh_from_db()
    assert sent.status == "cancelled"


def test_illegal_update_changes_nothing(stock, strategy, broker):
    order = order_lifecycle.submit_order(entry(stock, strategy), broker)
    broker_reports.apply_order_update(OrderUpdate("E1", "", "cancelled", 0, None, T))
    broker_reports.apply_order_update(OrderUpdate("E1", "", "filled", 10, Decimal("1"), T))
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert StrategyEvent.objects.filter(event_type="order.illegal_transition").exists()


def test_connection_events_are_journaled():
    broker_reports.apply_event(ConnectionEvent(False, "lost", 1100))
    assert StrategyEvent.objects.get().event_type == "broker.disconnected"


def test_stop_and_target_are_placed_after_the_entry_fill_and_stop_counts(stock, strategy, broker):
    strategy.stop_loss_type, strategy.stop_loss_value = "percent", Decimal("5")
    strategy.take_profit_type, strategy.take_profit_value = "percent", Decimal("10")
    strategy.save()
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    order_lifecycle.submit_order(entry(stock, strategy), broker)
    day = bar(1, 100, 111, 94, 100)
    broker.on_bar_open("AAPL", day)
    drain(broker)
    trade = Trade.objects.get()
    assert trade.stop_loss == Decimal("95") and trade.take_profit == Decimal("110")
    assert trade.risk_amount == Decimal("50")
    broker.on_bar("AAPL", day)
    drain(broker)
    trade.refresh_from_db()
    assert trade.status == "closed" and trade.exit_reason == "stop_loss"
    assert trade.realized_pnl == Decimal("-50") and trade.r_multiple == Decimal("-1")
    assert Order.objects.get(purpose="take_profit").status == "cancelled"


def test_a_poll_settles_repeated_status_reports_from_one_read(
    stock, strategy, broker, django_assert_num_queries
):
    order = order_lifecycle.submit_order(entry(stock, strategy), broker)
    broker_id = order.broker_order_id
    submitted = OrderUpdate("E1", broker_id, "submitted", 0, None, T)
    filled = OrderUpdate("E1", broker_id, "filled", 10, Decimal("100"), T)
    with django_assert_num_queries(1):  # the one read of the orders the poll names
        applier = broker_reports.EventApplier([submitted, report("E1", "X1", "10", "100"), filled, submitted])
    with django_assert_num_queries(0):
        assert applier.apply(submitted) is None  # the order is already submitted
    fill = applier.apply(applier.events[1])
    assert isinstance(fill, Fill) and fill.order.status == "filled"
    # after the fill, "filled" and a late "submitted" say nothing new: no read, no write,
    # and no illegal filled -> submitted step in the journal
    with django_assert_num_queries(0):
        assert applier.apply(filled) is None
        assert applier.apply(submitted) is None
    assert [o.client_order_id for o in applier.touched] == ["E1"]
    assert not StrategyEvent.objects.filter(event_type="order.illegal_transition").exists()
    order.refresh_from_db()
    assert order.status == "filled" and order.filled_quantity == 10


def test_a_report_that_brings_the_broker_id_is_not_stale():
    update = OrderUpdate("E1", "B7", "submitted", 0, None, T)
    assert broker_reports.is_stale_report(("submitted", ""), update) is False
    assert broker_reports.is_stale_report(("submitted", "B7"), update) is True
    assert broker_reports.is_stale_report(("filled", "B7"), update) is True
    assert broker_reports.is_stale_report(None, update) is False  # unknown order: read and journal it


def test_an_event_that_fails_is_read_again_next_time(stock, strategy, broker):
    order = order_lifecycle.submit_order(entry(stock, strategy), broker)
    applier = broker_reports.EventApplier([OrderUpdate("E1", order.broker_order_id, "cancelled", 0, None, T)])
    failing = mock.patch.object(broker_reports, "apply_event", side_effect=RuntimeError("database went away"))
    with failing, pytest.raises(RuntimeError):
        applier.apply(applier.events[0])
    assert "E1" not in applier.known and applier.touched == []


def test_create_orders_inserts_the_new_and_returns_the_known(stock, strategy):
    known = entry(stock, strategy, cid="SL-1")
    intents = [
        OrderIntent(stock=stock, side="sell", quantity=Decimal("10"), strategy=strategy, client_order_id=cid)
        for cid in ("SL-1", "TP-1")
    ]
    orders = order_lifecycle.create_orders(intents)
    assert [o.client_order_id for o in orders] == ["SL-1", "TP-1"]
    assert orders[0].pk == known.pk and orders[0].side == "buy"  # the row already there, untouched
    assert orders[1].pk is not None and orders[1].status == "pending_submit"
    assert Order.objects.count() == 2
    created = StrategyEvent.objects.filter(event_type="order.created")
    assert sorted(e.metadata["client_order_id"] for e in created) == ["SL-1", "TP-1"]


def test_a_protective_pair_created_elsewhere_in_between_is_taken_not_doubled(stock, strategy, broker):
    strategy.stop_loss_type, strategy.stop_loss_value = "percent", 5
    strategy.take_profit_type, strategy.take_profit_value = "r_multiple", 2
    strategy.save()
    broker.on_bar("AAPL", bar(0, 100, 100, 100, 100))
    order_lifecycle.submit_order(entry(stock, strategy), broker)
    real = order_lifecycle.create_orders
    calls = []

    def conflicting(intents, broker_name="paper"):
        calls.append([i.client_order_id for i in intents])
        if len(calls) == 1:  # another writer's row made the insert fail
            raise IntegrityError("duplicate key value violates unique constraint")
        return real(intents, broker_name)

    with mock.patch.object(exits, "create_orders", side_effect=conflicting):
        broker.on_bar_open("AAPL", bar(1, 100, 101, 99, 100))
        drain(broker)
    assert len(calls) == 2 and calls[0] == calls[1]  # the same ids, asked again
    assert sorted(Order.objects.exclude(purpose="entry").values_list("purpose", "status")) == [
        ("stop_loss", "submitted"),
        ("take_profit", "submitted"),
    ]
    trade = Trade.objects.get()
    assert trade.stop_loss == Decimal("95") and trade.take_profit == Decimal("110")
