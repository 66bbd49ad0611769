"""Connecting to TWS / IB Gateway, losing the connection and getting it back (session.py)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    BrokerUnavailable,
    ConnectionEvent,
)
from execution.brokers.ibkr import IBKRBroker
from execution.tests.ibkr.support import D, drain, make_broker, req

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


# --- connection loss and reconnect ------------------------------------------------------


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
