"""``manage.py ibkr_check``: can this machine trade through TWS / IB Gateway?

Connects with the IBKR_* settings (or the options), prints the server time, the account,
its net liquidation, buying power and cash, and the positions, then disconnects. Any
failure is one line on stderr and a non-zero exit status, so it fits scripts and
health checks.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.brokers.base import BrokerError
from execution.brokers.ibkr import IBKRBroker


def make_broker(**options: Any) -> IBKRBroker:
    """The broker to check; tests replace this to inject a fake IB."""
    return IBKRBroker(**options)


class Command(BaseCommand):
    help = "Connect to TWS / IB Gateway and print server time, account, buying power and positions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="default: IBKR_HOST")
        parser.add_argument("--port", type=int, default=None, help="default: IBKR_PORT")
        parser.add_argument("--client-id", type=int, default=None, help="default: IBKR_CLIENT_ID")
        parser.add_argument("--account", default=None, help="default: IBKR_ACCOUNT")
        parser.add_argument("--timeout", type=float, default=None, help="default: IBKR_CONNECT_TIMEOUT")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.IBKR_HOST or "127.0.0.1"
        port = options["port"] if options["port"] is not None else settings.IBKR_PORT
        client_id = options["client_id"] if options["client_id"] is not None else settings.IBKR_CLIENT_ID
        if port is None:
            raise CommandError("IBKR_PORT is not set (paper: TWS 7497, IB Gateway 4002); or pass --port")
        if client_id is None:
            raise CommandError("IBKR_CLIENT_ID is not set; or pass --client-id")
        timeout = options["timeout"] if options["timeout"] is not None else settings.IBKR_CONNECT_TIMEOUT
        account = options["account"] if options["account"] is not None else settings.IBKR_ACCOUNT

        # ib_insync logs every failed step itself; this command's one line says it all.
        library_log = logging.getLogger("ib_insync")
        level = library_log.level
        library_log.setLevel(logging.CRITICAL)
        broker = make_broker(
            host=host,
            port=port,
            client_id=client_id,
            account=account,
            connect_timeout=timeout,
            notice_sink=lambda *_: None,
        )
        try:
            broker.connect()
            self._report(broker)
        except BrokerError as exc:
            raise CommandError(str(exc)) from None
        finally:
            broker.disconnect()
            library_log.setLevel(level)

    def _report(self, broker: IBKRBroker) -> None:
        out = self.stdout
        out.write(f"Connected to IB at {broker.host}:{broker.port} as client {broker.client_id}")
        out.write(f"Server time:     {broker.server_time().isoformat()}")
        snapshot = broker.account()
        cur = snapshot.currency
        out.write(f"Account:         {broker.account_id}")
        out.write(f"Net liquidation: {snapshot.net_liquidation:,.2f} {cur}")
        out.write(f"Buying power:    {snapshot.buying_power:,.2f} {cur}")
        out.write(f"Cash:            {snapshot.cash:,.2f} {cur}")
        positions = broker.positions()
        out.write(f"Positions:       {len(positions)}")
        for pos in sorted(positions, key=lambda p: p.symbol):
            out.write(f"  {pos.symbol:<8} {pos.quantity.normalize():>12f} @ {pos.avg_cost:,.4f}")
        out.write(self.style.SUCCESS("IBKR check passed"))
