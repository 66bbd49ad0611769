"""Fixtures for the IBKR broker tests: a fake IB that knows AAPL and MSFT, a connected broker."""

from __future__ import annotations

import pytest

from execution.brokers.base import ConnectionEvent
from execution.brokers.ibkr import IBKRBroker
from execution.tests.fake_ib import FakeIB
from execution.tests.ibkr.support import make_broker


@pytest.fixture
def fake() -> FakeIB:
    ib = FakeIB()
    ib.add_contract("AAPL", "NASDAQ", 265598)
    ib.add_contract("MSFT", "NASDAQ", 272093)
    return ib


@pytest.fixture
def notices() -> list:
    """The notices the broker's sink received, as (kind, message, code)."""
    return []


@pytest.fixture
def ib_broker(fake, notices) -> IBKRBroker:
    broker = make_broker(fake, notices)
    broker.connect()
    events = broker.poll_events()
    assert [type(e) for e in events] == [ConnectionEvent]
    return broker
