"""What this broker knows about its orders across reconnects, and which executions it has
handed to the engine (so none is reported twice and statuses wait for their fills)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from execution.brokers.base import BrokerOrder, FillReport, OrderRequest
from execution.brokers.ibkr import mapping
from execution.brokers.ibkr.mapping import ZERO

FINAL_STATUSES = ("filled", "cancelled", "rejected")


@dataclass
class TrackedOrder:
    """One of this broker's orders (placed by it, or found at IB and adopted)."""

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
        return bool(self.last) and self.last[0] in FINAL_STATUSES

    def refresh_ids(self) -> None:
        """Take IB's ids from the trade: the permId arrives with TWS's acknowledgement."""
        if self.trade is None:
            return
        perm = self.trade.order.permId or self.trade.orderStatus.permId
        if perm:
            self.perm_id = perm
        self.order_id = self.trade.order.orderId or self.order_id


class OrderTracker:
    """The tracked orders by ``client_order_id`` (IB's ``orderRef``) and the executions seen.

    ``ib`` is the library's client, read for its trades and fills only.
    """

    def __init__(self, ib: Any):
        self._ib = ib
        self.orders: dict[str, TrackedOrder] = {}
        self.reported_execs: set[str] = set()  # queued as an event or returned by a query
        self.counted_execs: set[str] = set()  # shares added to their order's reported_fill
        self.commission_sent: set[str] = set()  # execIds whose commission the engine has
        self.commissions: dict[str, Decimal] = {}  # commission reports by execId

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self.orders.get(client_order_id)

    def track(self, request: OrderRequest) -> TrackedOrder:
        """The order about to be placed for ``request``."""
        tracked = self.orders.get(request.client_order_id)
        if tracked is None:
            tracked = TrackedOrder(request.client_order_id)
            self.orders[request.client_order_id] = tracked
        tracked.symbol = request.symbol.upper()
        tracked.side = request.side
        tracked.quantity = request.quantity
        tracked.order_type = request.order_type
        return tracked

    def adopt(self, trade: Any) -> TrackedOrder | None:
        """Track an order found at IB (restart, reconnect), so its later events are ours."""
        cid = trade.order.orderRef
        if not cid:
            return None
        tracked = self.orders.get(cid)
        if tracked is None:
            tracked = TrackedOrder(
                cid,
                symbol=trade.contract.symbol,
                side=mapping.side_of(trade.order.action, ""),
                quantity=mapping.ib_decimal(trade.order.totalQuantity) or ZERO,
                order_type=mapping.order_type_of(trade.order.orderType, "market"),
            )
            # Fills that happened before we tracked it are the engine's reconciliation's.
            tracked.reported_fill = self.filled(trade)[0]
            self.orders[cid] = tracked
        # The newest object wins: after a reconnect the old session's Trade is frozen.
        tracked.trade = trade
        tracked.perm_id = trade.order.permId or trade.orderStatus.permId or tracked.perm_id
        tracked.order_id = trade.order.orderId or tracked.order_id
        return tracked

    def find_trade(self, client_order_id: str, open_only: bool = False) -> Any:
        """The library's Trade for the order, a live one before a finished one."""
        trades = self._ib.openTrades() if open_only else self._ib.trades()
        found = [t for t in trades if t.order.orderRef == client_order_id]
        if not found:
            return None
        live = [t for t in found if not t.isDone()]
        return (live or found)[-1]

    # --- the order as ours --------------------------------------------------------------

    def filled(self, trade: Any) -> tuple[Decimal, Decimal | None]:
        return mapping.filled(trade, self._ib.fills)

    def error_of(self, trade: Any, tracked: TrackedOrder | None) -> tuple[int | None, str]:
        return mapping.error_of(trade, tracked.error if tracked is not None else None)

    def broker_order(self, trade: Any) -> BrokerOrder:
        shares, avg = self.filled(trade)
        code, _ = self.error_of(trade, self.orders.get(trade.order.orderRef))
        return mapping.broker_order(trade, shares, avg, code)

    def fill_report(self, fill: Any, known: Any = None) -> FillReport:
        return mapping.fill_report(fill, known, self.commissions)

    # --- executions handed out ----------------------------------------------------------

    def mark_reported(self, report: FillReport) -> None:
        """This execution is reported (queued as an event or returned by a query): once only."""
        self.reported_execs.add(report.execution_id)
        if report.commission is not None:
            self.commission_sent.add(report.execution_id)

    def handed_out(self, report: FillReport) -> None:
        """Count the shares the engine has now seen for the order (for holding statuses)."""
        if report.execution_id in self.counted_execs:
            return
        self.counted_execs.add(report.execution_id)
        tracked = self.orders.get(report.client_order_id)
        if tracked is not None:
            tracked.reported_fill += report.quantity

    def reported_fill(self, client_order_id: str) -> Decimal:
        """Shares of the order in the FillReports the engine has been given."""
        tracked = self.orders.get(client_order_id)
        return tracked.reported_fill if tracked else ZERO
