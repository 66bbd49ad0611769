"""What IB has that this process did not send (restart), positions, account, status mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from execution.brokers.base import (
    BrokerUnavailable,
)
from execution.brokers.ibkr.mapping import map_status
from execution.tests.ibkr.support import D, drain, make_broker, req

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
