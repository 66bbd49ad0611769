"""Interactive Brokers (TWS or IB Gateway) behind :mod:`execution.brokers.base`.

Identity: every order carries the ``client_order_id`` as IB's ``orderRef``; the
acknowledgement returns IB's ``permId`` (stable across sessions) as ``broker_order_id``
and the per-session ``orderId`` beside it. ``permId`` only exists once TWS has seen the
order, so :meth:`IBKRBroker.submit` waits (processing I/O) up to ``ack_timeout`` for it;
without it the outcome is unknown and :class:`SubmitOutcomeUnknown` is raised.

The broker wires the parts together: the :class:`~.session.Session` (connection,
reconnect), the :class:`~.events.EventFeed` and its :class:`~.events.EventQueue` (the
library's events as ours), the :class:`~.tracking.OrderTracker` (our orders at IB) and
:mod:`.mapping` (IB's objects to ours and back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    AccountSnapshot,
    BracketRequest,
    Broker,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    BrokerUnavailable,
    FillReport,
    OrderRejected,
    OrderRequest,
    SubmitAck,
    SubmitOutcomeUnknown,
)
from execution.brokers.ibkr import mapping
from execution.brokers.ibkr.events import EventFeed, EventQueue
from execution.brokers.ibkr.session import Session
from execution.brokers.ibkr.tracking import OrderTracker, TrackedOrder
from strategies.events import record_event
from strategies.models import Severity

logger = logging.getLogger(__name__)

NoticeSink = Callable[[str, str, int | None], None]  # (kind, message, code)


def record_notice(kind: str, message: str, code: int | None) -> None:
    """Default notice sink: journal a StrategyEvent (only ever called outside the I/O loop)."""
    try:
        record_event(f"broker.{kind}", message, severity=Severity.WARNING, broker="ibkr", code=code)
    except Exception:  # a journal failure must not take the broker down; the log keeps it
        logger.exception("could not journal IBKR notice %s: %s", kind, message)


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
        self.ack_timeout = float(ack_timeout)
        self._notice_sink = notice_sink or record_notice
        self._ib = ib if ib is not None else ibc.IB()
        # Blocking requests wait forever by default; a dead Gateway must not hang the engine.
        self._ib.RequestTimeout = float(request_timeout)
        self._contracts: dict[mapping.ContractKey, Any] = {}
        self._completed_cache: tuple[float, list[Any]] | None = None

        self._queue = EventQueue(fill_wait)
        self._tracker = OrderTracker(self._ib)
        self._feed = EventFeed(self._ib, self._tracker, self._queue, int(client_id))
        self._session = Session(
            self._ib,
            host,
            port,
            client_id,
            account,
            connect_timeout,
            reconnect_delays,
            self._queue,
            on_reconnect=self._feed.replay_after_reconnect,
        )

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<IBKRBroker {self.host}:{self.port} client {self.client_id} {state}>"

    @property
    def host(self) -> str:
        return self._session.host

    @property
    def port(self) -> int:
        return self._session.port

    @property
    def client_id(self) -> int:
        return self._session.client_id

    @property
    def account_id(self) -> str:
        return self._session.account_id

    # --- connection (the session's) -----------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._session.is_connected

    def connect(self) -> None:
        """Connect and synchronise, or raise :class:`BrokerUnavailable` with one line."""
        self._session.connect()

    def disconnect(self) -> None:
        self._session.disconnect()

    def ensure_connected(self) -> bool:
        """Reconnect when the socket dropped, at most once per backoff step; True if usable.

        Called by :meth:`poll_events`; the engine may call it too.
        """
        return self._session.ensure_connected()

    reconnect = ensure_connected

    # --- contracts ----------------------------------------------------------------------

    def contract(self, symbol: str, exchange: str = "", currency: str = "USD") -> Any:
        """The qualified stock contract, asked from IB once and cached."""
        key = mapping.contract_key(symbol, exchange, currency)
        cached = self._contracts.get(key)
        if cached is not None:
            return cached
        wanted = mapping.stock_query(key)
        details = self._session.request(
            lambda: self._ib.reqContractDetails(wanted), f"the contract for {key[0]}"
        )
        contract = mapping.stock_contract(key, details)
        self._contracts[key] = contract
        return contract

    # --- orders -------------------------------------------------------------------------

    def _place(self, contract: Any, order: Any, request: OrderRequest) -> TrackedOrder:
        tracked = self._tracker.track(request)
        try:
            trade = self._ib.placeOrder(contract, order)
        except ConnectionError as exc:
            # ib_insync raises before writing to the socket when it is not ready.
            raise BrokerUnavailable(f"Not connected to IB: {exc}") from None
        tracked.trade = trade
        tracked.order_id = trade.order.orderId
        return tracked

    def submit(self, request: OrderRequest) -> SubmitAck:
        self._session.require_connected()
        order = mapping.build_order(request, self.account_id)
        existing = self._already_sent(request.client_order_id)
        if existing is not None:
            return self._await_acks([existing])[0]
        contract = self.contract(request.symbol, request.exchange, request.currency)
        tracked = self._place(contract, order, request)
        return self._await_acks([tracked])[0]

    def _already_sent(self, client_order_id: str) -> TrackedOrder | None:
        """The order if IB already has it (sent earlier, or by the engine's previous run).

        Submitting is idempotent per ``client_order_id``: the same id is never placed
        twice; its existing acknowledgement is returned instead (or, if IB has not
        acknowledged it yet, the outcome is unknown, as it really is).
        """
        tracked = self._tracker.get(client_order_id)
        if tracked is not None and tracked.trade is not None:
            return tracked
        trade = self._tracker.find_trade(client_order_id)  # open and today's completed orders
        if trade is not None:
            logger.warning("%s is already at IB; not sent again", client_order_id)
            return self._tracker.adopt(trade)
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
        """Place orders in one OCA group; ``linked``: the first is the parent of the rest."""
        self._session.require_connected()
        if not requests:
            return []
        orders = [mapping.build_order(r, self.account_id) for r in requests]
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
        mapping.link_group(orders, ids, f"oca-{first.client_order_id}"[:64], linked)
        tracked_list: list[TrackedOrder] = []
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

    def _await_acks(self, tracked: list[TrackedOrder]) -> list[SubmitAck]:
        """Process I/O until every order has a permId, is rejected, or time runs out."""
        names = ", ".join(t.client_order_id for t in tracked)
        deadline = time.monotonic() + self.ack_timeout
        grace_until: float | None = None
        while True:
            for t in tracked:
                t.refresh_ids()
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

    def _pending_rejection(self, tracked: TrackedOrder) -> bool:
        if tracked.last and tracked.last[0] == "rejected":
            return True
        return self._queue.has_rejection(tracked.client_order_id)

    def _reject_group(self, group: list[TrackedOrder], rejected: list[TrackedOrder]) -> OrderRejected:
        """The rejection is reported by the exception: drop its queued status events, and
        cancel whatever else of the group is still alive (a bracket is all or nothing)."""
        first = rejected[0]
        code, text = first.error or (None, "rejected by IB")
        self._queue.drop_updates({t.client_order_id for t in group})
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
        self._session.require_connected()
        trade = self._tracker.find_trade(client_order_id, open_only=True)
        if trade is None:
            logger.warning("cancel %s: IB has no open order with this orderRef", client_order_id)
            return
        try:
            self._ib.cancelOrder(trade.order)
        except ConnectionError as exc:
            raise BrokerUnavailable(f"Not connected to IB: {exc}") from None

    # --- queries (reconciliation, risk) -------------------------------------------------

    def open_orders(self) -> list[BrokerOrder]:
        """Open orders of this client (ib_insync keeps them in sync from the connect on)."""
        self._session.require_connected()
        result = []
        for trade in self._ib.openTrades():
            self._tracker.adopt(trade)
            result.append(self._tracker.broker_order(trade))
        return result

    def find_order(self, client_order_id: str) -> BrokerOrder | None:
        """This session's orders first, then IB's completed orders, matched by orderRef."""
        self._session.require_connected()
        trade = self._tracker.find_trade(client_order_id)
        if trade is None or not trade.isActive():
            done = [t for t in self._completed_orders() if t.order.orderRef == client_order_id]
            if done:
                trade = done[-1]
        if trade is None:
            return None
        self._tracker.adopt(trade)
        return self._tracker.broker_order(trade)

    def _completed_orders(self) -> list[Any]:
        """IB's completed orders, asked at most once per second: a reconciliation looks up
        many orders in a row, and IB paces requests."""
        now = time.monotonic()
        if self._completed_cache is None or now - self._completed_cache[0] > 1.0:
            completed = self._session.request(
                lambda: self._ib.reqCompletedOrders(apiOnly=True), "completed orders"
            )
            self._completed_cache = (now, list(completed))
        return self._completed_cache[1]

    def executions(self, since: datetime | None = None) -> list[FillReport]:
        """IB's executions (today's, or as far back as TWS keeps them) since ``since``."""
        flt = ibc.ExecutionFilter(acctCode=self.account_id or "")
        if since is not None:
            # "yyyymmdd-hh:mm:ss" is read by TWS as UTC.
            flt.time = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
        fills = self._session.request(lambda: self._ib.reqExecutions(flt), "the executions request")
        known = {f.execution.execId: f for f in self._ib.fills()}
        reports = []
        for fill in fills:
            execution = fill.execution
            if since is not None and mapping.aware(execution.time) < since:
                continue
            report = self._tracker.fill_report(fill, known.get(execution.execId))
            reports.append(report)
            # The engine applies what it gets here: never hand these out again as events.
            self._tracker.mark_reported(report)
            self._tracker.handed_out(report)
        reports.sort(key=lambda r: (r.timestamp, r.execution_id))
        return reports

    def positions(self) -> list[BrokerPosition]:
        self._session.require_connected()
        positions = self._ib.positions(self.account_id) if self.account_id else self._ib.positions()
        return mapping.broker_positions(positions)

    def account(self) -> AccountSnapshot:
        """Net liquidation, buying power and cash (account summary) for the risk checks."""
        values = self._session.request(
            lambda: self._ib.accountSummary(self.account_id), "the account summary"
        )
        return mapping.account_snapshot(values, self.account_id)

    def server_time(self) -> datetime:
        """TWS/Gateway's clock (for ``ibkr_check``)."""
        return mapping.aware(self._session.request(self._ib.reqCurrentTime, "the current time"))

    # --- draining -----------------------------------------------------------------------

    def poll_events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Reconnect if due, let the library process I/O for ``timeout`` s, return events."""
        if self._session.want_connection and not self._session.socket_up:
            self._session.ensure_connected()
        self._ib.sleep(max(float(timeout), 0.0))
        events = self._queue.drain(self._tracker)
        for kind, message, code in self._queue.take_notices():
            logger.warning("%s", message)
            self._notice_sink(kind, message, code)
        return events
