"""Brokers behind one interface (:mod:`execution.brokers.base`): paper and IBKR."""

from __future__ import annotations

from django.conf import settings

from execution.brokers.base import Broker

BROKERS = ("paper", "ibkr")


def get_broker(name: str | None = None) -> Broker:
    """The broker named ``name`` (default ``settings.BROKER``), not yet connected.

    IBKR is imported only when chosen, so ib_insync is never loaded for the paper broker.
    """
    name = (name or settings.BROKER).lower()
    if name == "paper":
        from execution.brokers.paper import PaperBroker

        return PaperBroker()
    if name == "ibkr":
        from execution.brokers.ibkr import IBKRBroker

        return IBKRBroker(
            host=settings.IBKR_HOST,
            port=settings.IBKR_PORT,
            client_id=settings.IBKR_CLIENT_ID,
            account=settings.IBKR_ACCOUNT,
            connect_timeout=settings.IBKR_CONNECT_TIMEOUT,
        )
    raise ValueError(f"unknown broker {name!r}; expected one of {', '.join(BROKERS)}")
