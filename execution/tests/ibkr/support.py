"""Helpers for the IBKR broker tests: a broker on the fake IB with short waits, orders, drains."""

from __future__ import annotations

from decimal import Decimal

from execution.brokers.base import OrderRequest, OrderUpdate
from execution.brokers.ibkr import IBKRBroker
from execution.tests.fake_ib import FakeIB

D = Decimal


def make_broker(fake: FakeIB, notices: list | None = None, **kwargs) -> IBKRBroker:
    """A broker on ``fake`` for account DU1234567 (unless given) whose notices go to ``notices``."""
    account = kwargs.pop("account", "DU1234567")
    options = {
        "ack_timeout": 0.3,
        "fill_wait": 0.2,
        "reconnect_delays": (0,),
        "notice_sink": (lambda *n: notices.append(n)) if notices is not None else (lambda *n: None),
    }
    options.update(kwargs)
    return IBKRBroker("127.0.0.1", 4002, 7, account=account, ib=fake, **options)


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
