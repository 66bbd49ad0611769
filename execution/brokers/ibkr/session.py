"""The API session with TWS / IB Gateway: connect, reconnect with backoff, and whether
orders may go out.

While the API socket is down, or TWS has lost IB's servers (code 1100), submissions raise
:class:`BrokerUnavailable`. The broker's ``poll_events`` reconnects through
:meth:`Session.ensure_connected`; after a reconnect, what happened to this session's orders
during the gap is reported once (``on_reconnect``, the event feed's replay), then a
``ConnectionEvent(connected=True)`` tells the engine to reconcile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from execution.brokers import ib_compat as ibc
from execution.brokers.base import BrokerUnavailable, ConnectionEvent
from execution.brokers.ibkr import errors
from execution.brokers.ibkr.events import EventQueue

logger = logging.getLogger(__name__)

Replay = Callable[[], tuple[int, int]]  # queues what was missed: (fills, order updates)


class Session:
    """One API client of TWS / IB Gateway, over the library's ``ib`` object."""

    def __init__(
        self,
        ib: Any,
        host: str,
        port: int,
        client_id: int,
        account: str,
        connect_timeout: float,
        reconnect_delays: Iterable[float],
        queue: EventQueue,
        on_reconnect: Replay,
    ):
        self._ib = ib
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.account_id = account  # resolved from the login's accounts on connect when empty
        self.connect_timeout = float(connect_timeout)
        self.reconnect_delays = tuple(float(d) for d in reconnect_delays) or (1.0,)
        self._queue = queue
        self._on_reconnect = on_reconnect

        self.want_connection = False  # connect() succeeded once and disconnect() not called
        self._ever_connected = False
        self._closing = False  # our own disconnect: no "connection lost" event
        self._link_lost = False  # TWS lost IB's servers (1100) while our socket stays up
        self._attempts = 0
        self.next_attempt = 0.0  # monotonic time before which no reconnect is tried

        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        ib.connectedEvent += self._on_connected

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def socket_up(self) -> bool:
        return bool(self._ib.isConnected())

    @property
    def is_connected(self) -> bool:
        """The socket is up and TWS is connected to IB: orders can go out."""
        return self.socket_up and not self._link_lost

    def connect(self) -> None:
        """Connect and synchronise, or raise :class:`BrokerUnavailable` with one line."""
        if self._ib.isConnected():
            return
        seen: list[tuple[int, str]] = []

        def remember(_req_id: int, code: int, message: str, _contract: Any) -> None:
            seen.append((code, message))

        ibc.ensure_event_loop()
        self._ib.errorEvent += remember
        self._closing = True  # a failed handshake disconnects: not a "lost connection"
        try:
            self._ib.connect(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.connect_timeout,
                readonly=False,
                account=self.account_id,
            )
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            message = errors.connect_failure(
                exc,
                seen,
                host=self.host,
                port=self.port,
                client_id=self.client_id,
                timeout=self.connect_timeout,
            )
            raise BrokerUnavailable(message) from None
        finally:
            self._ib.errorEvent -= remember
            self._closing = False

        self._resolve_account(list(self._ib.managedAccounts()))
        reconnect = self._ever_connected
        self.want_connection = True
        self._ever_connected = True
        self._link_lost = False
        self._attempts = 0
        logger.info("connected to IB at %s as client %s", self.where, self.client_id)
        if reconnect:
            replayed, updates = self._on_reconnect()
            self._queue.push(
                ConnectionEvent(
                    True,
                    f"Reconnected to IB at {self.where}; {replayed} missed fill(s) and "
                    f"{updates} order update(s) reported; reconcile",
                )
            )
        else:
            self._queue.push(ConnectionEvent(True, f"Connected to IB at {self.where} ({self.account_id})"))

    def _resolve_account(self, accounts: list[str]) -> None:
        """Check IBKR_ACCOUNT against the login's accounts, or take its first one."""
        if self.account_id and accounts and self.account_id not in accounts:
            self.disconnect()
            raise BrokerUnavailable(
                f"IBKR_ACCOUNT={self.account_id} is not an account of this IB login "
                f"(it has: {', '.join(accounts)})"
            )
        if not self.account_id and accounts:
            if len(accounts) > 1:
                logger.warning(
                    "IB login manages %d accounts; using %s (set IBKR_ACCOUNT to choose)",
                    len(accounts),
                    accounts[0],
                )
            self.account_id = accounts[0]

    def disconnect(self) -> None:
        self.want_connection = False
        self._closing = True
        try:
            self._ib.disconnect()
        finally:
            self._closing = False

    def ensure_connected(self) -> bool:
        """Reconnect when the socket dropped, at most once per backoff step; True if usable.

        During an IB-side outage (1100) TWS reconnects by itself, so nothing is attempted.
        """
        if self.is_connected:
            return True
        if self._ib.isConnected() or not self.want_connection:
            return False
        if time.monotonic() < self.next_attempt:
            return False
        try:
            self.connect()
        except BrokerUnavailable as exc:
            delay = self.reconnect_delays[min(self._attempts, len(self.reconnect_delays) - 1)]
            self._attempts += 1
            self.next_attempt = time.monotonic() + delay
            logger.warning("IB reconnect attempt %d failed: %s; next in %gs", self._attempts, exc, delay)
            return False
        return self.is_connected

    def require_connected(self) -> None:
        """Raise :class:`BrokerUnavailable` unless orders can go out now."""
        if not self._ib.isConnected():
            raise BrokerUnavailable(f"Not connected to IB at {self.where}; submissions paused")
        if self._link_lost:
            raise BrokerUnavailable("TWS/Gateway has lost its connection to IB (1100); submissions paused")

    def request(self, call: Callable[[], Any], what: str) -> Any:
        """A blocking library request; lost connections and timeouts become BrokerUnavailable."""
        self.require_connected()
        try:
            return call()
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise BrokerUnavailable(f"IB did not answer {what}: {type(exc).__name__} {exc}".strip()) from None

    # --- library event handlers (inside the I/O loop: queue only) -----------------------

    def _on_connected(self) -> None:
        logger.debug("ib_insync connected and synchronised")

    def _on_disconnected(self) -> None:
        if self._closing or not self.want_connection:
            return
        self.next_attempt = time.monotonic() + self.reconnect_delays[0]
        self._queue.push(
            ConnectionEvent(
                False,
                f"Lost the API connection to IB at {self.where}; submissions paused, reconnecting",
            )
        )

    def _on_error(self, _req_id: int, code: int, message: str, _contract: Any) -> None:
        if code == errors.CONNECTIVITY_LOST:
            self._link_lost = True
            text = message.rstrip(". ")
            self._queue.push(
                ConnectionEvent(False, f"IB connectivity lost ({text}); submissions paused", code)
            )
        elif code in (errors.CONNECTIVITY_RESTORED, errors.CONNECTIVITY_RESTORED_DATA_LOST):
            self._link_lost = False
            self._queue.push(ConnectionEvent(True, f"IB connectivity restored: {message}", code))
