"""ib_insync's events turned into ours, and the queue that holds them for the engine.

The library calls the handlers inside its I/O loop, where no database call may happen:
they only append to the :class:`EventQueue`; :meth:`IBKRBroker.poll_events` drains it.
Status updates are de-duplicated per order, and one that reports more filled shares than
the executions seen so far waits (briefly) for those executions, because TWS sends
``orderStatus`` and ``execDetails`` in either order: the engine always sees a fill before
the status that counts it. Connection events are the session's (:mod:`.session`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from decimal import Decimal
from typing import Any

from execution.brokers.base import BrokerEvent, CommissionUpdate, FillReport, OrderUpdate
from execution.brokers.ibkr import errors
from execution.brokers.ibkr.errors import Notice
from execution.brokers.ibkr.mapping import aware, ib_decimal, map_status, now
from execution.brokers.ibkr.tracking import OrderTracker, TrackedOrder

logger = logging.getLogger(__name__)

_ENDS = ("rejected", "cancelled")


class EventQueue:
    """Events for the engine, oldest first, each with the monotonic time it was queued;
    and notices (errors of no order) for the journal."""

    def __init__(self, fill_wait: float):
        self.fill_wait = float(fill_wait)  # how long a status waits for its executions
        self._items: deque[tuple[float, BrokerEvent]] = deque()
        self._notices: list[Notice] = []

    def push(self, event: BrokerEvent) -> None:
        self._items.append((time.monotonic(), event))

    def notice(self, notice: Notice) -> None:
        self._notices.append(notice)

    def take_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    def has_rejection(self, client_order_id: str) -> bool:
        return any(
            isinstance(ev, OrderUpdate) and ev.client_order_id == client_order_id and ev.status == "rejected"
            for _, ev in self._items
        )

    def drop_updates(self, client_order_ids: set[str]) -> None:
        """Forget the queued status updates of these orders (their outcome is reported otherwise)."""
        self._items = deque(
            (at, ev)
            for at, ev in self._items
            if not (isinstance(ev, OrderUpdate) and ev.client_order_id in client_order_ids)
        )

    def fill_in_reason(self, client_order_id: str, code: int, message: str) -> None:
        """Give a queued rejection/cancellation IB's own words (the error follows the status)."""
        for i, (at, ev) in enumerate(self._items):
            if (
                isinstance(ev, OrderUpdate)
                and ev.client_order_id == client_order_id
                and ev.status in _ENDS
                and (not ev.message or ev.code in (None, code))
            ):
                self._items[i] = (at, dataclasses.replace(ev, message=message, code=code))

    def merge_commission(self, execution_id: str, commission: Decimal) -> bool:
        """Put the commission on the execution's FillReport if it is still queued (the engine
        then gets one complete report instead of two events); False if it is not."""
        for i, (at, ev) in enumerate(self._items):
            if isinstance(ev, FillReport) and ev.execution_id == execution_id:
                self._items[i] = (at, dataclasses.replace(ev, commission=commission))
                return True
        return False

    def drain(self, tracker: OrderTracker) -> list[BrokerEvent]:
        """Hand out queued events, holding a status back until the fills it counts are out.

        TWS sends ``orderStatus`` and ``execDetails`` in either order; the engine must see
        a fill before the status that counts it. A status waits at most ``fill_wait`` s.
        """
        out: list[BrokerEvent] = []
        held: dict[str, list[tuple[float, OrderUpdate]]] = {}
        at_now = time.monotonic()
        seen = tracker.reported_fill

        for at, ev in self._items:
            if isinstance(ev, OrderUpdate):
                cid = ev.client_order_id
                # IB sends "Inactive" a moment before the error that says why: wait for it.
                waiting = at_now - at < self.fill_wait and (
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
                tracker.handed_out(ev)
                waiting_list = held.get(ev.client_order_id)
                while waiting_list and waiting_list[0][1].filled_quantity <= seen(ev.client_order_id):
                    out.append(waiting_list.pop(0)[1])
        self._items = deque(sorted((item for items in held.values() for item in items), key=lambda x: x[0]))
        return out


class EventFeed:
    """The library's order-status, execution, commission and error events, as ours.

    ``client_id`` is this session's API client id: order ids are matched on this client's
    orders only.
    """

    def __init__(self, ib: Any, tracker: OrderTracker, queue: EventQueue, client_id: int):
        self._ib = ib
        self._tracker = tracker
        self._queue = queue
        self._client_id = client_id
        ib.orderStatusEvent += self._on_order_status
        ib.execDetailsEvent += self._on_exec_details
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error

    def _on_order_status(self, trade: Any) -> None:
        cid = trade.order.orderRef
        if not cid:
            return  # not an order of this platform (manual TWS order)
        tracked = self._tracker.adopt(trade)
        if tracked is None or tracked.silenced:
            return
        self.emit_status(tracked, trade)

    def emit_status(self, tracked: TrackedOrder, trade: Any) -> None:
        """Queue the order's status if it says something new (and the order is not final)."""
        filled, avg = self._tracker.filled(trade)
        code, text = self._tracker.error_of(trade, tracked)
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
        if code and status in _ENDS:
            tracked.error = (code, text)
        tracked.last = (status, filled)
        message = text if status in _ENDS else ""
        if status in _ENDS and not message and tracked.error:
            code, message = tracked.error
        self._queue.push(
            OrderUpdate(
                client_order_id=tracked.client_order_id,
                broker_order_id=str(trade.order.permId or trade.orderStatus.permId or tracked.perm_id or ""),
                status=status,
                filled_quantity=filled,
                avg_fill_price=avg,
                timestamp=aware(trade.log[-1].time) if trade.log else now(),
                message=message,
                code=code if status in _ENDS else None,
            )
        )

    def report_fill(self, fill: Any) -> None:
        """Queue an execution the engine has not been given yet."""
        report = self._tracker.fill_report(fill)
        self._tracker.mark_reported(report)
        self._queue.push(report)

    def _on_exec_details(self, trade: Any, fill: Any) -> None:
        if fill.execution.execId in self._tracker.reported_execs:
            return
        if trade is not None:
            self._tracker.adopt(trade)
        self.report_fill(fill)

    def _on_commission(self, _trade: Any, fill: Any, report: Any) -> None:
        exec_id = report.execId or fill.execution.execId
        commission = ib_decimal(report.commission)
        if commission is None:
            return
        tracker = self._tracker
        tracker.commissions[exec_id] = commission
        if exec_id not in tracker.reported_execs or exec_id in tracker.commission_sent:
            return  # merged when the fill is reported (reconnect replay) or already sent
        tracker.commission_sent.add(exec_id)
        if not self._queue.merge_commission(exec_id, commission):
            self._queue.push(CommissionUpdate(exec_id, commission))

    def _order_for_req(self, req_id: int) -> TrackedOrder | None:
        # Only this session's orders: order ids repeat across sessions (and share their
        # sequence with request ids), so an old id must not capture a new request's error.
        for trade in self._ib.trades():
            if (
                trade.order.orderId == req_id
                and trade.order.orderRef
                and trade.order.clientId == self._client_id
            ):
                return self._tracker.adopt(trade)
        return None

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        if code in errors.CONNECTIVITY_CODES:
            return  # the session's (TWS lost or regained IB's servers)
        level = errors.informational_level(code)
        if level is not None:
            logger.log(level, "IB %s: %s", code, message)
            return
        tracked = self._order_for_req(req_id) if req_id and req_id > 0 else None
        if tracked is not None:
            if code in errors.ORDER_WARNINGS:
                logger.info("IB on %s (%s): %s", tracked.client_order_id, code, message)
                return
            message = errors.order_error_text(code, message)
            tracked.error = (code, message)
            self._queue.fill_in_reason(tracked.client_order_id, code, message)
            logger.warning("IB error %s on order %s: %s", code, tracked.client_order_id, message)
            return
        self._queue.notice(errors.notice_for(code, message))

    def replay_after_reconnect(self) -> tuple[int, int]:
        """Report what happened to this session's orders while the socket was down; return
        (missed fills, order updates) queued.

        ib_insync re-synchronises open orders, completed orders and the day's executions
        on connect without firing live events for them; fills first, then statuses.
        """
        tracker = self._tracker
        fills = sorted(self._ib.fills(), key=lambda f: (aware(f.execution.time), f.execution.execId))
        replayed = 0
        for fill in fills:
            execution = fill.execution
            if execution.execId in tracker.reported_execs or execution.orderRef not in tracker.orders:
                continue
            self.report_fill(fill)
            replayed += 1
        updates = 0
        for cid, tracked in tracker.orders.items():
            trade = tracker.find_trade(cid)
            if trade is None:
                continue
            tracker.adopt(trade)
            before = tracked.last
            self.emit_status(tracked, tracked.trade)
            updates += tracked.last != before
        return replayed, updates
