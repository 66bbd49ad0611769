"""Interactive Brokers (TWS or IB Gateway) behind the broker interface, through ib_insync.

How it maps onto :mod:`execution.brokers.base`:

- **Identity.** Every order carries the ``client_order_id`` as IB's ``orderRef``; the
  acknowledgement returns IB's ``permId`` (stable across sessions) as ``broker_order_id``
  and the per-session ``orderId`` beside it. ``permId`` only exists once TWS has seen the
  order, so :meth:`IBKRBroker.submit` waits (processing I/O) up to ``ack_timeout`` for it;
  without it the outcome is unknown and :class:`SubmitOutcomeUnknown` is raised.
- **Events.** ib_insync's events (order status, executions, commission reports, errors,
  disconnects) are turned into the base dataclasses in handlers that only append to a
  queue (they run inside the library's event loop, where no database call may happen);
  :meth:`IBKRBroker.poll_events` lets the library process I/O and drains the queue.
  Status updates are de-duplicated per order, and one that reports more filled shares than
  the executions seen so far waits (briefly) for those executions, because TWS sends
  ``orderStatus`` and ``execDetails`` in either order: the engine always sees a fill
  before the status that counts it.
- **Connection.** While the API socket is down, or TWS has lost IB's servers (code
  1100), submissions raise :class:`BrokerUnavailable`. :meth:`poll_events` reconnects
  with backoff (:meth:`ensure_connected`); after a reconnect, executions and final
  statuses of this session's orders that happened during the gap are reported once (they
  reach ib_insync as a re-synchronisation, not as live events), then a
  ``ConnectionEvent(connected=True)`` tells the engine to reconcile.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    AccountSnapshot,
    BracketRequest,
    Broker,
    BrokerError,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    BrokerUnavailable,
    CommissionUpdate,
    ConnectionEvent,
    FillReport,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
    SubmitAck,
    SubmitOutcomeUnknown,
    UnknownContract,
)

logger = logging.getLogger("execution.brokers.ibkr")

ZERO = Decimal("0")

# IB message codes (https://interactivebrokers.github.io/tws-api/message_codes.html).
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_DATA_LOST = 1101
CONNECTIVITY_RESTORED = 1102
CLIENT_ID_IN_USE = 326
NO_SECURITY_DEFINITION = 200
READ_ONLY_API = 321
# Max messages per second (100), historical-data pacing (162 with "pacing"), real-time query
# pacing (420): IB drops the request; repeated violations end with a disconnect.
PACING_CODES = frozenset({100, 420})
# A cancel that failed (order already filled, unknown or not cancellable). ib_insync marks
# the order "Cancelled" on any order error; for these the order's real state follows.
CANCEL_FAILED_CODES = frozenset({161, 10147, 10148, 10149})
# Informational: market-data farm connections OK/broken, "not subscribed" notes and the like.
INFORMATIONAL = range(2100, 2200)
FARM_TROUBLE = frozenset({2103, 2105, 2110, 2157})
ORDER_WARNINGS = frozenset({202, 399, 404, 434, 10167})

_SIDE = {"buy": "BUY", "sell": "SELL"}
_EXEC_SIDE = {"BOT": "buy", "SLD": "sell"}
_TIF = {"day": "DAY", "gtc": "GTC"}
_ORDER_TYPE = {"MKT": "market", "LMT": "limit", "STP": "stop", "STP LMT": "stop_limit"}
_LOG_PREFIX = re.compile(r"^(Error|Warning) \d+, reqId -?\d+: ")

NoticeSink = Callable[[str, str, int | None], None]


def _dec(value: Any) -> Decimal | None:
    """A library float as Decimal; IB's "unset" (max float) and NaN become None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or abs(number) >= 1e300:
        return None
    return Decimal(repr(number)).normalize() if number else ZERO


def map_status(ib_status: str, filled: Decimal, error_code: int | None = None) -> str | None:
    """IB's order status onto ours; None while nothing is decided yet.

    ``Inactive`` (refused by IB or the exchange) and an order cancelled because of an order
    error are rejections when nothing was filled; with fills they are cancellations of the
    remainder. A cancel that failed (161, 10147...) decides nothing: the real state follows.
    """
    if ib_status == "Filled":
        return "filled"
    if ib_status in ("Cancelled", "ApiCancelled"):
        if error_code in CANCEL_FAILED_CODES:
            return None
        if error_code and filled == 0:
            return "rejected"
        return "cancelled"
    if ib_status == "Inactive":
        return "rejected" if filled == 0 else "cancelled"
    if ib_status in ("PreSubmitted", "Submitted"):
        return "partially_filled" if filled > 0 else "submitted"
    return None  # PendingSubmit, ApiPending, PendingCancel


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None and value.year > 1970:
        return value.astimezone(UTC)
    return _now()


def _record_notice(kind: str, message: str, code: int | None) -> None:
    """Default notice sink: journal a StrategyEvent (only ever called outside the I/O loop)."""
    try:
        from strategies.events import record_event
        from strategies.models import Severity

        record_event(f"broker.{kind}", message, severity=Severity.WARNING, broker="ibkr", code=code)
    except Exception:  # a journal failure must not take the broker down; the log keeps it
        logger.exception("could not journal IBKR notice %s: %s", kind, message)


@dataclass
class _Tracked:
    """What this broker knows about one of its orders, across reconnects."""

    client_order_id: str
    symbol: str = ""
    side: str = ""
    quantity: Decimal = ZERO
    order_type: str = "market"
    perm_id: int = 0
    order_id: int | None = None
    trade: Any = None  # the library's Trade; replaced by a fresh one after a reconnect
    last: tuple[str, Decimal] | None = None  # last reported (status, filled)
    reported_fill: Decimal = ZERO  # shares in FillReports handed out
    error: tuple[int, str] | None = None  # last order error (code, IB's text)
    silenced: bool = False  # rejection already reported by submit(): no status events after

    @property
    def final(self) -> bool:
        return bool(self.last) and self.last[0] in ("filled", "cancelled", "rejected")


class IBKRBroker(Broker):
    """Orders, executions, positions and account values from TWS / IB Gateway."""

    name = "ibkr"

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        account: str = "",
        connect_timeout: float = 10.0,
        ib: Any = None,
        *,
        ack_timeout: float = 5.0,
        request_timeout: float = 30.0,
        fill_wait: float = 2.0,
        reconnect_delays: Iterable[float] = (1, 2, 5, 10, 30, 60),
        notice_sink: NoticeSink | None = None,
    ):
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.account_id = account
        self.connect_timeout = float(connect_timeout)
        self.ack_timeout = float(ack_timeout)
        self.fill_wait = float(fill_wait)
        self.reconnect_delays = tuple(float(d) for d in reconnect_delays) or (1.0,)
        self._notice_sink = notice_sink or _record_notice
        self._ib = ib if ib is not None else ibc.IB()
        # Blocking requests wait forever by default; a dead Gateway must not hang the engine.
        self._ib.RequestTimeout = float(request_timeout)

        self._queue: deque[tuple[float, BrokerEvent]] = deque()
        self._notices: list[tuple[str, str, int | None]] = []
        self._orders: dict[str, _Tracked] = {}
        self._reported_execs: set[str] = set()
        self._counted_execs: set[str] = set()
        self._commission_sent: set[str] = set()
        self._commissions: dict[str, Decimal] = {}
        self._contracts: dict[tuple[str, str, str], Any] = {}
        self._completed_cache: tuple[float, list[Any]] | None = None

        self._want_connection = False  # connect() succeeded once and disconnect() not called
        self._ever_connected = False
        self._closing = False  # our own disconnect: no "connection lost" event
        self._link_lost = False  # TWS lost IB's servers (1100) while our socket stays up
        self._attempts = 0
        self._next_attempt = 0.0

        self._ib.orderStatusEvent += self._on_order_status
        self._ib.execDetailsEvent += self._on_exec_details
        self._ib.commissionReportEvent += self._on_commission
        self._ib.errorEvent += self._on_error
        self._ib.disconnectedEvent += self._on_disconnected
        self._ib.connectedEvent += self._on_connected

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<IBKRBroker {self.host}:{self.port} client {self.client_id} {state}>"

    # --- connection ---------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return bool(self._ib.isConnected()) and not self._link_lost

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
            raise BrokerUnavailable(self._connect_failure(exc, seen)) from None
        finally:
            self._ib.errorEvent -= remember
            self._closing = False

        accounts = list(self._ib.managedAccounts())
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

        reconnect = self._ever_connected
        self._want_connection = True
        self._ever_connected = True
        self._link_lost = False
        self._attempts = 0
        logger.info("connected to IB at %s:%s as client %s", self.host, self.port, self.client_id)
        if reconnect:
            self._replay_after_reconnect()
        else:
            self._push(
                ConnectionEvent(True, f"Connected to IB at {self.host}:{self.port} ({self.account_id})")
            )

    def _connect_failure(self, exc: BaseException, seen: list[tuple[int, str]]) -> str:
        where = f"Cannot connect to IB at {self.host}:{self.port}"
        codes = {code for code, _ in seen}
        if CLIENT_ID_IN_USE in codes:
            return (
                f"{where}: client id {self.client_id} is already in use; set IBKR_CLIENT_ID to another number"
            )
        if isinstance(exc, ConnectionRefusedError):
            return (
                f"{where}: connection refused, nothing is listening there "
                "(start TWS or IB Gateway; paper ports: TWS 7497, Gateway 4002)"
            )
        if isinstance(exc, TimeoutError):
            return (
                f"{where}: no API handshake within {self.connect_timeout:g}s "
                "(enable 'ActiveX and Socket Clients' in the API settings, add this host to "
                f"Trusted IPs, and use a client id no other session uses, now {self.client_id})"
            )
        detail = str(exc) or type(exc).__name__
        if seen:
            detail = f"{detail}; IB said: {seen[-1][1]} (code {seen[-1][0]})"
        return f"{where}: {type(exc).__name__}: {detail}"

    def disconnect(self) -> None:
        self._want_connection = False
        self._closing = True
        try:
            self._ib.disconnect()
        finally:
            self._closing = False

    def ensure_connected(self) -> bool:
        """Reconnect when the socket dropped, at most once per backoff step; True if usable.

        Called by :meth:`poll_events`; the engine may call it too. During an IB-side outage
        (1100) TWS reconnects by itself, so nothing is attempted.
        """
        if self.is_connected:
            return True
        if self._ib.isConnected() or not self._want_connection:
            return False
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        try:
            self.connect()
        except BrokerUnavailable as exc:
            delay = self.reconnect_delays[min(self._attempts, len(self.reconnect_delays) - 1)]
            self._attempts += 1
            self._next_attempt = time.monotonic() + delay
            logger.warning("IB reconnect attempt %d failed: %s; next in %gs", self._attempts, exc, delay)
            return False
        return self.is_connected

    reconnect = ensure_connected

    def _require_connected(self) -> None:
        if not self._ib.isConnected():
            raise BrokerUnavailable(f"Not connected to IB at {self.host}:{self.port}; submissions paused")
        if self._link_lost:
            raise BrokerUnavailable("TWS/Gateway has lost its connection to IB (1100); submissions paused")

    def _request(self, call: Callable[[], Any], what: str) -> Any:
        """A blocking library request; lost connections and timeouts become BrokerUnavailable."""
        self._require_connected()
        try:
            return call()
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise BrokerUnavailable(f"IB did not answer {what}: {type(exc).__name__} {exc}".strip()) from None

    # --- contracts ----------------------------------------------------------------------

    def contract(self, symbol: str, exchange: str = "", currency: str = "USD") -> Any:
        """The qualified stock contract, asked from IB once and cached."""
        key = (symbol.upper(), exchange.upper(), currency.upper())
        cached = self._contracts.get(key)
        if cached is not None:
            return cached
        extra = {"primaryExchange": key[1]} if key[1] else {}
        wanted = ibc.Stock(key[0], "SMART", key[2], **extra)
        details = self._request(lambda: self._ib.reqContractDetails(wanted), f"the contract for {key[0]}")
        where = f"{key[0]} ({key[2]}{', primary exchange ' + key[1] if key[1] else ''})"
        if not details:
            raise UnknownContract(f"IB has no stock {where}: no security definition (code 200)")
        if len(details) > 1:
            exchanges = sorted({d.contract.primaryExchange for d in details if d.contract.primaryExchange})
            raise UnknownContract(
                f"IB knows several stocks {where} (primary exchanges {', '.join(exchanges) or '?'}); "
                "set the stock's exchange"
            )
        contract = details[0].contract
        # Keep SMART routing: the qualified contract names the listing exchange instead.
        contract.exchange = "SMART"
        self._contracts[key] = contract
        return contract

    # --- orders -------------------------------------------------------------------------

    def _build_order(self, request: OrderRequest) -> Any:
        action = _SIDE.get(request.side)
        if action is None:
            raise OrderRejected(f"{request.client_order_id}: side {request.side!r} is not buy or sell")
        if request.quantity is None or request.quantity <= 0:
            raise OrderRejected(f"{request.client_order_id}: quantity must be positive")
        tif = _TIF.get(request.time_in_force)
        if tif is None:
            raise OrderRejected(
                f"{request.client_order_id}: time in force {request.time_in_force!r} is not day or gtc"
            )
        qty = float(request.quantity)
        kind = request.order_type
        needs_limit = kind in ("limit", "stop_limit")
        needs_stop = kind in ("stop", "stop_limit")
        if needs_limit and not request.limit_price:
            raise OrderRejected(f"{request.client_order_id}: a {kind} order needs a limit price")
        if needs_stop and not request.stop_price:
            raise OrderRejected(f"{request.client_order_id}: a {kind} order needs a stop price")
        if kind == "market":
            order = ibc.MarketOrder(action, qty)
        elif kind == "limit":
            order = ibc.LimitOrder(action, qty, float(request.limit_price))
        elif kind == "stop":
            order = ibc.StopOrder(action, qty, float(request.stop_price))
        elif kind == "stop_limit":
            order = ibc.StopLimitOrder(action, qty, float(request.limit_price), float(request.stop_price))
        else:
            raise OrderRejected(f"{request.client_order_id}: order type {kind!r} is not supported by IBKR")
        order.tif = tif
        order.orderRef = request.client_order_id
        if self.account_id:
            order.account = self.account_id
        return order

    def _track(self, request: OrderRequest) -> _Tracked:
        tracked = self._orders.get(request.client_order_id)
        if tracked is None:
            tracked = _Tracked(request.client_order_id)
            self._orders[request.client_order_id] = tracked
        tracked.symbol = request.symbol.upper()
        tracked.side = request.side
        tracked.quantity = request.quantity
        tracked.order_type = request.order_type
        return tracked

    def _place(self, contract: Any, order: Any, request: OrderRequest) -> _Tracked:
        tracked = self._track(request)
        try:
            trade = self._ib.placeOrder(contract, order)
        except ConnectionError as exc:
            # ib_insync raises before writing to the socket when it is not ready.
            raise BrokerUnavailable(f"Not connected to IB: {exc}") from None
        tracked.trade = trade
        tracked.order_id = trade.order.orderId
        return tracked

    def submit(self, request: OrderRequest) -> SubmitAck:
        self._require_connected()
        order = self._build_order(request)
        existing = self._already_sent(request.client_order_id)
        if existing is not None:
            return self._await_acks([existing])[0]
        contract = self.contract(request.symbol, request.exchange, request.currency)
        tracked = self._place(contract, order, request)
        return self._await_acks([tracked])[0]

    def _already_sent(self, client_order_id: str) -> _Tracked | None:
        """The order if IB already has it (sent earlier, or by the engine's previous run).

        Submitting is idempotent per ``client_order_id``: the same id is never placed
        twice; its existing acknowledgement is returned instead (or, if IB has not
        acknowledged it yet, the outcome is unknown, as it really is).
        """
        tracked = self._orders.get(client_order_id)
        if tracked is not None and tracked.trade is not None:
            return tracked
        trade = self._find_trade(client_order_id)  # open and today's completed orders
        if trade is not None:
            logger.warning("%s is already at IB; not sent again", client_order_id)
            return self._adopt(trade)
        return None

    def submit_bracket(self, bracket: BracketRequest) -> list[SubmitAck]:
        """Parent plus take-profit and stop-loss, one OCA group, transmitted as one.

        Children reference the parent; only the last order has ``transmit`` set, so TWS
        holds the group until it is complete and no entry ever goes out unprotected.
        """
        return self._submit_group(bracket.orders(), linked=True)

    def submit_oco(self, requests: list[OrderRequest]) -> list[SubmitAck]:
        """Protective stop and target of a filled entry, native IB one-cancels-other."""
        return self._submit_group(list(requests), linked=False)

    def _submit_group(self, requests: list[OrderRequest], linked: bool) -> list[SubmitAck]:
        """Place orders in one OCA group; ``linked``: the first is the parent of the rest.

        The OCA type "reduce with block" (2) shrinks the other exits when one partly fills,
        so the remaining position stays covered, and guards against over-fills (type 1
        would cancel the whole stop after a partial take-profit).
        """
        self._require_connected()
        if not requests:
            return []
        orders = [self._build_order(r) for r in requests]
        existing = [self._already_sent(r.client_order_id) for r in requests]
        if all(existing):
            return self._await_acks([t for t in existing if t is not None])
        if any(existing):
            # Part of the group is at IB already: placing the rest would break the group.
            raise SubmitOutcomeUnknown(
                f"part of the group of {requests[0].client_order_id} is already at IB; query it"
            )
        first = requests[0]
        contract = self.contract(first.symbol, first.exchange, first.currency)
        try:
            ids = [self._ib.client.getReqId() for _ in orders]
        except ConnectionError as exc:
            raise BrokerUnavailable(f"Not connected to IB: {exc}") from None
        oca = f"oca-{first.client_order_id}"[:64]
        for i, order in enumerate(orders):
            order.orderId = ids[i]
            if linked:
                order.transmit = i == len(orders) - 1
                if i > 0:
                    order.parentId = ids[0]
            if (linked and i > 0) or (not linked and len(orders) > 1):
                order.ocaGroup = oca
                order.ocaType = 2
        tracked_list: list[_Tracked] = []
        for request, order in zip(requests, orders, strict=True):
            try:
                tracked_list.append(self._place(contract, order, request))
            except BrokerUnavailable:
                if not tracked_list:
                    raise
                raise SubmitOutcomeUnknown(
                    f"connection lost while placing the group of {first.client_order_id}; outcome unknown"
                ) from None
        return self._await_acks(tracked_list)

    def _await_acks(self, tracked: list[_Tracked]) -> list[SubmitAck]:
        """Process I/O until every order has a permId, is rejected, or time runs out."""
        names = ", ".join(t.client_order_id for t in tracked)
        deadline = time.monotonic() + self.ack_timeout
        grace_until: float | None = None
        while True:
            self._refresh_ids(tracked)
            rejected = [t for t in tracked if self._pending_rejection(t)]
            if rejected:
                # IB may send the Inactive status a moment before the error with its reason.
                if any(t.error is None for t in rejected) and grace_until is None:
                    grace_until = min(deadline, time.monotonic() + 0.25)
                if all(t.error is not None for t in rejected) or time.monotonic() >= (grace_until or 0):
                    raise self._reject_group(tracked, rejected)
            elif all(t.perm_id for t in tracked):
                return [
                    SubmitAck(t.client_order_id, str(t.perm_id), session_order_id=t.order_id) for t in tracked
                ]
            if not self._ib.isConnected():
                raise SubmitOutcomeUnknown(
                    f"connection to IB lost before it acknowledged {names}; outcome unknown"
                )
            remaining = deadline - time.monotonic()
            if grace_until is not None:
                remaining = min(remaining, grace_until - time.monotonic())
            if remaining <= 0 and not rejected:
                raise SubmitOutcomeUnknown(
                    f"IB did not acknowledge {names} within {self.ack_timeout:g}s; outcome unknown"
                )
            self._ib.waitOnUpdate(timeout=max(remaining, 0.01))

    def _refresh_ids(self, tracked: Iterable[_Tracked]) -> None:
        for t in tracked:
            trade = t.trade
            if trade is None:
                continue
            perm = trade.order.permId or trade.orderStatus.permId
            if perm:
                t.perm_id = perm
            t.order_id = trade.order.orderId or t.order_id

    def _pending_rejection(self, tracked: _Tracked) -> bool:
        if tracked.last and tracked.last[0] == "rejected":
            return True
        return any(
            isinstance(ev, OrderUpdate)
            and ev.client_order_id == tracked.client_order_id
            and ev.status == "rejected"
            for _, ev in self._queue
        )

    def _reject_group(self, group: list[_Tracked], rejected: list[_Tracked]) -> OrderRejected:
        """The rejection is reported by the exception: drop its queued status events, and
        cancel whatever else of the group is still alive (a bracket is all or nothing)."""
        first = rejected[0]
        code, text = first.error or (None, "rejected by IB")
        cids = {t.client_order_id for t in group}
        self._queue = deque(
            (at, ev)
            for at, ev in self._queue
            if not (isinstance(ev, OrderUpdate) and ev.client_order_id in cids)
        )
        for t in group:
            t.silenced = True
            if t not in rejected and t.trade is not None and not t.trade.isDone():
                try:
                    self._ib.cancelOrder(t.trade.order)
                except ConnectionError:
                    logger.warning("could not cancel %s after its group was rejected", t.client_order_id)
        who = first.client_order_id if len(group) == 1 else f"{first.client_order_id} (and its group)"
        # The code travels on the exception; the pipeline appends it to the reason.
        return OrderRejected(f"IB rejected {who}: {text}", code=code)

    def cancel(self, client_order_id: str) -> None:
        self._require_connected()
        trade = self._find_trade(client_order_id, open_only=True)
        if trade is None:
            logger.warning("cancel %s: IB has no open order with this orderRef", client_order_id)
            return
        try:
            self._ib.cancelOrder(trade.order)
        except ConnectionError as exc:
            raise BrokerUnavailable(f"Not connected to IB: {exc}") from None

    # --- queries (reconciliation, risk) -------------------------------------------------

    def _find_trade(self, client_order_id: str, open_only: bool = False) -> Any:
        trades = self._ib.openTrades() if open_only else self._ib.trades()
        found = [t for t in trades if t.order.orderRef == client_order_id]
        if not found:
            return None
        live = [t for t in found if not t.isDone()]
        return (live or found)[-1]

    def open_orders(self) -> list[BrokerOrder]:
        """Open orders of this client (ib_insync keeps them in sync from the connect on)."""
        self._require_connected()
        result = []
        for trade in self._ib.openTrades():
            self._adopt(trade)
            result.append(self._broker_order(trade))
        return result

    def find_order(self, client_order_id: str) -> BrokerOrder | None:
        """This session's orders first, then IB's completed orders, matched by orderRef."""
        self._require_connected()
        trade = self._find_trade(client_order_id)
        if trade is None or not trade.isActive():
            done = [t for t in self._completed_orders() if t.order.orderRef == client_order_id]
            if done:
                trade = done[-1]
        if trade is None:
            return None
        self._adopt(trade)
        return self._broker_order(trade)

    def _completed_orders(self) -> list[Any]:
        """IB's completed orders, asked at most once per second: a reconciliation looks up
        many orders in a row, and IB paces requests."""
        now = time.monotonic()
        if self._completed_cache is None or now - self._completed_cache[0] > 1.0:
            completed = self._request(lambda: self._ib.reqCompletedOrders(apiOnly=True), "completed orders")
            self._completed_cache = (now, list(completed))
        return self._completed_cache[1]

    def executions(self, since: datetime | None = None) -> list[FillReport]:
        """IB's executions (today's, or as far back as TWS keeps them) since ``since``."""
        flt = ibc.ExecutionFilter(acctCode=self.account_id or "")
        if since is not None:
            # "yyyymmdd-hh:mm:ss" is read by TWS as UTC.
            flt.time = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
        fills = self._request(lambda: self._ib.reqExecutions(flt), "the executions request")
        known = {f.execution.execId: f for f in self._ib.fills()}
        reports = []
        for fill in fills:
            execution = fill.execution
            if since is not None and _aware(execution.time) < since:
                continue
            report = self._fill_report(fill, known.get(execution.execId))
            reports.append(report)
            # The engine applies what it gets here: never hand these out again as events.
            self._mark_reported(report)
            self._handed_out(report)
        reports.sort(key=lambda r: (r.timestamp, r.execution_id))
        return reports

    def positions(self) -> list[BrokerPosition]:
        self._require_connected()
        positions = self._ib.positions(self.account_id) if self.account_id else self._ib.positions()
        result = []
        for pos in positions:
            qty = _dec(pos.position) or ZERO
            if qty == 0:
                continue
            result.append(BrokerPosition(pos.contract.symbol, qty, _dec(pos.avgCost) or ZERO))
        return result

    def account(self) -> AccountSnapshot:
        """Net liquidation, buying power and cash (account summary) for the risk checks."""
        values = self._request(lambda: self._ib.accountSummary(self.account_id), "the account summary")
        by_tag: dict[str, Any] = {}
        for value in values:
            by_tag.setdefault(value.tag, value)
        missing = [t for t in ("NetLiquidation", "BuyingPower", "TotalCashValue") if t not in by_tag]
        if missing:
            raise BrokerUnavailable(
                f"IB sent no {', '.join(missing)} for account {self.account_id or '?'} in its account summary"
            )

        def number(tag: str) -> Decimal:
            try:
                return Decimal(by_tag[tag].value)
            except InvalidOperation:
                raise BrokerError(f"IB account value {tag}={by_tag[tag].value!r} is not a number") from None

        extra_tags = ("AvailableFunds", "ExcessLiquidity", "GrossPositionValue", "EquityWithLoanValue")
        return AccountSnapshot(
            net_liquidation=number("NetLiquidation"),
            buying_power=number("BuyingPower"),
            cash=number("TotalCashValue"),
            currency=by_tag["NetLiquidation"].currency or "USD",
            extra={t: by_tag[t].value for t in extra_tags if t in by_tag},
        )

    def server_time(self) -> datetime:
        """TWS/Gateway's clock (for ``ibkr_check``)."""
        return _aware(self._request(self._ib.reqCurrentTime, "the current time"))

    # --- mapping ------------------------------------------------------------------------

    def _fills_of(self, trade: Any) -> list[Any]:
        fills = list(trade.fills)
        if not fills and trade.order.permId:
            fills = [f for f in self._ib.fills() if f.execution.permId == trade.order.permId]
        return fills

    def _filled(self, trade: Any) -> tuple[Decimal, Decimal | None]:
        """Filled shares and average price, from the status, the order or the executions."""
        filled = _dec(trade.orderStatus.filled) or ZERO
        avg = _dec(trade.orderStatus.avgFillPrice) or None
        if filled == 0:
            # Completed orders come with an empty status; the order itself carries the total.
            filled = _dec(getattr(trade.order, "filledQuantity", None)) or ZERO
        if filled == 0 or avg is None:
            fills = self._fills_of(trade)
            shares = sum((_dec(f.execution.shares) or ZERO for f in fills), ZERO)
            if shares:
                filled = filled or shares
                value = sum(
                    ((_dec(f.execution.shares) or ZERO) * (_dec(f.execution.price) or ZERO) for f in fills),
                    ZERO,
                )
                avg = avg or (value / shares).quantize(Decimal("0.000001")).normalize()
        if filled == 0 and trade.orderStatus.status == "Filled":
            filled = _dec(trade.order.totalQuantity) or ZERO
        return filled, avg

    def _error_of(self, trade: Any, tracked: _Tracked | None) -> tuple[int | None, str]:
        if trade.log and trade.log[-1].errorCode and trade.log[-1].status == trade.orderStatus.status:
            entry = trade.log[-1]
            return entry.errorCode, _LOG_PREFIX.sub("", entry.message).split(", contract: ")[0]
        if tracked is not None and tracked.error is not None:
            return tracked.error
        return None, ""

    def _broker_order(self, trade: Any) -> BrokerOrder:
        filled, avg = self._filled(trade)
        code, _ = self._error_of(trade, self._orders.get(trade.order.orderRef))
        status = map_status(trade.orderStatus.status, filled, code)
        if status is None:  # pending at IB: open as far as anyone can tell
            status = "partially_filled" if filled > 0 else "submitted"
        return BrokerOrder(
            client_order_id=trade.order.orderRef,
            broker_order_id=str(trade.order.permId or trade.orderStatus.permId or ""),
            symbol=trade.contract.symbol,
            side=_SIDE_BACK.get(trade.order.action, trade.order.action.lower()),
            quantity=_dec(trade.order.totalQuantity) or ZERO,
            status=status,
            filled_quantity=filled,
            avg_fill_price=avg,
            order_type=_ORDER_TYPE.get(trade.order.orderType, trade.order.orderType.lower()),
            session_order_id=trade.order.orderId or None,
        )

    def _adopt(self, trade: Any) -> _Tracked | None:
        """Track an order found at IB (restart, reconnect), so its later events are ours."""
        cid = trade.order.orderRef
        if not cid:
            return None
        tracked = self._orders.get(cid)
        if tracked is None:
            tracked = _Tracked(
                cid,
                symbol=trade.contract.symbol,
                side=_SIDE_BACK.get(trade.order.action, ""),
                quantity=_dec(trade.order.totalQuantity) or ZERO,
                order_type=_ORDER_TYPE.get(trade.order.orderType, "market"),
            )
            # Fills that happened before we tracked it are the engine's reconciliation's.
            tracked.reported_fill = self._filled(trade)[0]
            self._orders[cid] = tracked
        # The newest object wins: after a reconnect the old session's Trade is frozen.
        tracked.trade = trade
        tracked.perm_id = trade.order.permId or trade.orderStatus.permId or tracked.perm_id
        tracked.order_id = trade.order.orderId or tracked.order_id
        return tracked

    def _fill_report(self, fill: Any, known: Any = None) -> FillReport:
        execution = fill.execution
        commission = None
        for source in (fill, known):
            report = getattr(source, "commissionReport", None)
            if report is not None and report.execId:
                commission = _dec(report.commission)
                break
        if commission is None:
            commission = self._commissions.get(execution.execId)
        ref = execution.orderRef
        return FillReport(
            execution_id=execution.execId,
            client_order_id=ref,
            broker_order_id=str(execution.permId or ""),
            symbol=fill.contract.symbol,
            side=_EXEC_SIDE.get(execution.side, execution.side.lower()),
            quantity=_dec(execution.shares) or ZERO,
            price=_dec(execution.price) or ZERO,
            timestamp=_aware(execution.time),
            commission=commission,
        )

    def _mark_reported(self, report: FillReport) -> None:
        """This execution is reported (queued as an event or returned by a query): once only."""
        self._reported_execs.add(report.execution_id)
        if report.commission is not None:
            self._commission_sent.add(report.execution_id)

    def _handed_out(self, report: FillReport) -> None:
        """Count the shares the engine has now seen for the order (for holding statuses)."""
        if report.execution_id in self._counted_execs:
            return
        self._counted_execs.add(report.execution_id)
        tracked = self._orders.get(report.client_order_id)
        if tracked is not None:
            tracked.reported_fill += report.quantity

    # --- library event handlers (inside the I/O loop: queue only) -----------------------

    def _push(self, event: BrokerEvent) -> None:
        self._queue.append((time.monotonic(), event))

    def _on_connected(self) -> None:
        logger.debug("ib_insync connected and synchronised")

    def _on_disconnected(self) -> None:
        if self._closing or not self._want_connection:
            return
        self._next_attempt = time.monotonic() + self.reconnect_delays[0]
        self._push(
            ConnectionEvent(
                False,
                f"Lost the API connection to IB at {self.host}:{self.port}; submissions paused, reconnecting",
            )
        )

    def _on_order_status(self, trade: Any) -> None:
        cid = trade.order.orderRef
        if not cid:
            return  # not an order of this platform (manual TWS order)
        tracked = self._adopt(trade)
        if tracked is None or tracked.silenced:
            return
        self._emit_status(tracked, trade)

    def _emit_status(self, tracked: _Tracked, trade: Any) -> None:
        filled, avg = self._filled(trade)
        code, text = self._error_of(trade, tracked)
        status = map_status(trade.orderStatus.status, filled, code)
        if status is None or tracked.silenced:
            return
        if (status, filled) == tracked.last:
            return
        if tracked.final:
            logger.info(
                "%s: IB reports %s after final %s; ignored", tracked.client_order_id, status, tracked.last
            )
            return
        if code and status in ("rejected", "cancelled"):
            tracked.error = (code, text)
        tracked.last = (status, filled)
        message = text if status in ("rejected", "cancelled") else ""
        if status in ("rejected", "cancelled") and not message and tracked.error:
            code, message = tracked.error
        self._push(
            OrderUpdate(
                client_order_id=tracked.client_order_id,
                broker_order_id=str(trade.order.permId or trade.orderStatus.permId or tracked.perm_id or ""),
                status=status,
                filled_quantity=filled,
                avg_fill_price=avg,
                timestamp=_aware(trade.log[-1].time) if trade.log else _now(),
                message=message,
                code=code if status in ("rejected", "cancelled") else None,
            )
        )

    def _on_exec_details(self, trade: Any, fill: Any) -> None:
        if fill.execution.execId in self._reported_execs:
            return
        if trade is not None:
            self._adopt(trade)
        report = self._fill_report(fill)
        self._mark_reported(report)
        self._push(report)

    def _on_commission(self, _trade: Any, fill: Any, report: Any) -> None:
        exec_id = report.execId or fill.execution.execId
        commission = _dec(report.commission)
        if commission is None:
            return
        self._commissions[exec_id] = commission
        if exec_id not in self._reported_execs or exec_id in self._commission_sent:
            return  # merged when the fill is reported (reconnect replay) or already sent
        self._commission_sent.add(exec_id)
        # Still queued? Then the engine gets one complete FillReport instead of two events.
        for i, (at, ev) in enumerate(self._queue):
            if isinstance(ev, FillReport) and ev.execution_id == exec_id:
                self._queue[i] = (at, dataclasses.replace(ev, commission=commission))
                return
        self._push(CommissionUpdate(exec_id, commission))

    def _order_for_req(self, req_id: int) -> _Tracked | None:
        # Only this session's orders: order ids repeat across sessions (and share their
        # sequence with request ids), so an old id must not capture a new request's error.
        for trade in self._ib.trades():
            if (
                trade.order.orderId == req_id
                and trade.order.orderRef
                and trade.order.clientId == self.client_id
            ):
                return self._adopt(trade)
        return None

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        if code == CONNECTIVITY_LOST:
            self._link_lost = True
            text = message.rstrip(". ")
            self._push(ConnectionEvent(False, f"IB connectivity lost ({text}); submissions paused", code))
            return
        if code in (CONNECTIVITY_RESTORED, CONNECTIVITY_RESTORED_DATA_LOST):
            self._link_lost = False
            self._push(ConnectionEvent(True, f"IB connectivity restored: {message}", code))
            return
        if code in INFORMATIONAL:
            # Farm connections broken (2103/2105/2157) or TWS-server link down (2110) only
            # matter if they last; TWS restores them by itself and says so with 21xx again.
            level = logging.WARNING if code in FARM_TROUBLE else logging.DEBUG
            logger.log(level, "IB %s: %s", code, message)
            return
        tracked = self._order_for_req(req_id) if req_id and req_id > 0 else None
        if tracked is not None:
            if code in ORDER_WARNINGS:
                logger.info("IB on %s (%s): %s", tracked.client_order_id, code, message)
                return
            if code == READ_ONLY_API:
                message = f"{message} (untick 'Read-Only API' in the TWS/Gateway API settings)"
            tracked.error = (code, message)
            self._fill_in_reason(tracked.client_order_id, code, message)
            logger.warning("IB error %s on order %s: %s", code, tracked.client_order_id, message)
            return
        if code in PACING_CODES or (code == 162 and "pacing" in message.lower()):
            self._notices.append(("pacing_violation", f"IB pacing violation (code {code}): {message}", code))
        elif code == NO_SECURITY_DEFINITION:
            self._notices.append(
                ("unknown_contract", f"IB has no such contract (code {code}): {message}", code)
            )
        else:
            self._notices.append(("ibkr_error", f"IB error {code}: {message}", code))

    def _fill_in_reason(self, cid: str, code: int, message: str) -> None:
        """Give a queued rejection/cancellation IB's own words (the error follows the status)."""
        for i, (at, ev) in enumerate(self._queue):
            if (
                isinstance(ev, OrderUpdate)
                and ev.client_order_id == cid
                and ev.status in ("rejected", "cancelled")
                and (not ev.message or ev.code in (None, code))
            ):
                self._queue[i] = (at, dataclasses.replace(ev, message=message, code=code))

    # --- reconnect replay ---------------------------------------------------------------

    def _replay_after_reconnect(self) -> None:
        """Report what happened to this session's orders while the socket was down.

        ib_insync re-synchronises open orders, completed orders and the day's executions
        on connect without firing live events for them; fills first, then statuses.
        """
        fills = sorted(self._ib.fills(), key=lambda f: (_aware(f.execution.time), f.execution.execId))
        replayed = 0
        for fill in fills:
            execution = fill.execution
            if execution.execId in self._reported_execs or execution.orderRef not in self._orders:
                continue
            report = self._fill_report(fill)
            self._mark_reported(report)
            self._push(report)
            replayed += 1
        updates = 0
        for cid, tracked in self._orders.items():
            trade = self._find_trade(cid)
            if trade is None:
                continue
            self._adopt(trade)
            before = tracked.last
            self._emit_status(tracked, tracked.trade)
            updates += tracked.last != before
        self._push(
            ConnectionEvent(
                True,
                f"Reconnected to IB at {self.host}:{self.port}; {replayed} missed fill(s) and "
                f"{updates} order update(s) reported; reconcile",
            )
        )

    # --- draining -----------------------------------------------------------------------

    def poll_events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Reconnect if due, let the library process I/O for ``timeout`` s, return events."""
        if self._want_connection and not self._ib.isConnected():
            self.ensure_connected()
        self._ib.sleep(max(float(timeout), 0.0))
        events = self._drain()
        self._flush_notices()
        return events

    def _flush_notices(self) -> None:
        notices, self._notices = self._notices, []
        for kind, message, code in notices:
            logger.warning("%s", message)
            self._notice_sink(kind, message, code)

    def _drain(self) -> list[BrokerEvent]:
        """Hand out queued events, holding a status back until the fills it counts are out.

        TWS sends ``orderStatus`` and ``execDetails`` in either order; the engine must see
        a fill before the status that counts it. A status waits at most ``fill_wait`` s.
        """
        out: list[BrokerEvent] = []
        held: dict[str, list[tuple[float, OrderUpdate]]] = {}
        now = time.monotonic()

        def seen(cid: str) -> Decimal:
            tracked = self._orders.get(cid)
            return tracked.reported_fill if tracked else ZERO

        for at, ev in self._queue:
            if isinstance(ev, OrderUpdate):
                cid = ev.client_order_id
                # IB sends "Inactive" a moment before the error that says why: wait for it.
                waiting = now - at < self.fill_wait and (
                    ev.filled_quantity > seen(cid) or (ev.status == "rejected" and not ev.message)
                )
                if held.get(cid) or waiting:
                    held.setdefault(cid, []).append((at, ev))
                    continue
                if ev.filled_quantity > seen(cid):
                    logger.warning(
                        "%s: IB reports %s filled, executions so far %s", cid, ev.filled_quantity, seen(cid)
                    )
                out.append(ev)
                continue
            out.append(ev)
            if isinstance(ev, FillReport):
                self._handed_out(ev)
                waiting_list = held.get(ev.client_order_id)
                while waiting_list and waiting_list[0][1].filled_quantity <= seen(ev.client_order_id):
                    out.append(waiting_list.pop(0)[1])
        self._queue = deque(sorted((item for items in held.values() for item in items), key=lambda x: x[0]))
        return out


_SIDE_BACK = {"BUY": "buy", "SELL": "sell"}
