"""A fake ``ib_insync.IB`` for tests: no TWS, no network, the library's own objects.

One module over 400 lines on purpose: it is one fake of one class (``IB``), whose "server"
and "client" halves share every message; split, each half would reach into the other.

It implements the part of ``IB`` the IBKR broker uses and emits real ib_insync objects
(``Trade``, ``OrderStatus``, ``Fill``, ``Execution``, ``CommissionReport``, ``Position``,
``AccountValue``, ``ContractDetails``) through the same eventkit events (``IB.events``),
following what ib_insync's ``Wrapper`` does with TWS's messages:

- "the broker" (``orders``, ``executions``, ``positions``) outlives the connection;
- the client side (``trades()``, ``fills()``, ``positions()``) is rebuilt on every connect,
  and only orders' statuses fire events during that synchronisation (executions and
  completed orders arrive silently, as in ib_insync's ``connectAsync``);
- messages "on the wire" (acknowledgements with the ``permId``, fills, errors) are
  delivered when the client processes I/O: ``sleep``, ``waitOnUpdate`` or a request.

Test-facing controls: ``listening``, ``handshake``, ``ack`` / ``ack_delay``,
``rejections``, ``disconnect_on_place``, ``status_first``, and the actions
``fill``, ``reject``, ``cancel_at_broker``, ``drop_connection``, ``restore``, ``error``,
``add_contract``, ``add_position``, ``add_open_order``, ``set_account``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from execution.brokers import ib_compat as ibc
from execution.brokers.ibkr import IBKRBroker

DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass
class ServerOrder:
    """An order as IB itself holds it (survives disconnects)."""

    contract: Any
    order: Any  # an ib_insync Order, with permId, orderId and clientId set
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_price: float = 0.0
    transmitted: bool = True
    error: tuple[int, str] | None = None
    commissions: list[float] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def remaining(self) -> float:
        return self.order.totalQuantity - self.filled


class _FakeClient:
    def __init__(self, ib: FakeIB):
        self._ib = ib
        self._next_id = 1
        self.host = ""
        self.port = 0

    def getReqId(self) -> int:
        if not self._ib._connected:
            raise ConnectionError("Not connected")
        value = self._next_id
        self._next_id += 1
        return value

    def isReady(self) -> bool:
        return self._ib._connected

    def serverVersion(self) -> int:
        return 176


class FakeIB:
    """See the module docstring."""

    RequestTimeout: float = 0

    def __init__(self, accounts: tuple[str, ...] = ("DU1234567",), server_time: datetime | None = None):
        for name in ibc.IB.events:
            setattr(self, name, ibc.Event(name))
        self.client = _FakeClient(self)
        self.accounts = list(accounts)
        self.server_time = server_time or datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
        # behaviour switches
        self.listening = True
        self.handshake = "ok"  # "ok" | "timeout" | "client_id_in_use" | "broken"
        self.ack = True  # False: TWS never acknowledges (no permId)
        self.ack_delay = 0  # I/O cycles before the acknowledgement arrives
        self.rejections: dict[str, tuple[int, str]] = {}  # orderRef -> (code, message) at submit
        self.split_rejection = False  # "Inactive" and the error in separate reads
        self.disconnect_on_place = False
        self.status_first = True  # orderStatus before execDetails for a fill
        # "the broker"
        self.orders: list[ServerOrder] = []
        self.executions: list[tuple[Any, Any, Any]] = []  # (contract, Execution, CommissionReport)
        self.server_positions: dict[tuple[str, str], list] = {}  # (account, symbol) -> [contract, qty, cost]
        self.account_values: dict[str, str] = {
            "NetLiquidation": "100000.00",
            "BuyingPower": "400000.00",
            "TotalCashValue": "100000.00",
            "AvailableFunds": "100000.00",
        }
        self.contracts: dict[str, list[Any]] = {}
        self.placed: list[Any] = []  # every order that went through placeOrder
        self.calls: dict[str, int] = {}
        self.connect_calls = 0
        self._next_perm = 900000001
        self._next_exec = 1
        self._cycle = 0
        self._wire: list[tuple[int, Callable[[], None]]] = []
        self._connected = False
        self.client_id = 0
        self._reset_client()

    # --- helpers --------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _reset_client(self) -> None:
        self._trades: dict[Any, Any] = {}
        self._fills: dict[str, Any] = {}

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _send(self, fn: Callable[[], None], delay: int = 0) -> None:
        """Put a message on the wire; it is read at the next I/O after ``delay`` cycles."""
        if self._connected:
            self._wire.append((self._cycle + delay, fn))

    def _pump(self) -> bool:
        self._cycle += 1
        due = [item for item in self._wire if item[0] < self._cycle]
        self._wire = [item for item in self._wire if item[0] >= self._cycle]
        for _, fn in due:
            if self._connected:
                fn()
        if due and self._connected:
            self.updateEvent.emit()
        return bool(due)

    def _server_order(self, order_ref: str) -> ServerOrder:
        found = [s for s in self.orders if s.order.orderRef == order_ref]
        if not found:
            raise KeyError(f"no order {order_ref} at the fake broker")
        return found[-1]

    def _trade_of(self, server: ServerOrder) -> Any:
        key = (server.order.clientId, server.order.orderId)
        for trade in self._trades.values():
            if server.order.permId and trade.order.permId == server.order.permId:
                return trade
            if (trade.order.clientId, trade.order.orderId) == key and not trade.order.permId:
                return trade
        return None

    def _log(self, trade: Any, status: str, message: str = "", code: int = 0) -> None:
        trade.log.append(ibc.TradeLogEntry(self._now(), status, message, code))

    def _status_message(self, server: ServerOrder, snapshot: tuple[str, float, float] | None = None) -> None:
        """TWS's orderStatus: update the client's Trade like ib_insync's Wrapper does.
        ``snapshot`` (status, filled, avg price) is the state when the message was sent."""
        trade = self._trade_of(server)
        if trade is None:
            return
        state, filled, avg = snapshot or (server.status, server.filled, server.avg_price)
        status = trade.orderStatus
        new = {
            "status": state,
            "filled": filled,
            "remaining": server.order.totalQuantity - filled,
            "avgFillPrice": avg,
            "permId": server.order.permId,
            "parentId": server.order.parentId,
            "clientId": server.order.clientId,
        }
        if all(getattr(status, k) == v for k, v in new.items()):
            return
        for key, value in new.items():
            setattr(status, key, value)
        trade.order.permId = server.order.permId
        self._log(trade, state)
        self.orderStatusEvent.emit(trade)

    # --- connection -----------------------------------------------------------------------

    def connect(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        clientId: int = 1,
        timeout: float = 4,
        readonly: bool = False,
        account: str = "",
    ) -> FakeIB:
        self.connect_calls += 1
        self.client.host, self.client.port = host, port
        if not self.listening:
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        if self.handshake == "timeout":
            raise TimeoutError()
        if self.handshake == "client_id_in_use":
            self.errorEvent.emit(
                -1,
                326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
                None,
            )
            raise ConnectionError("Socket disconnect")
        if self.handshake == "broken":
            self.errorEvent.emit(-1, 507, "Bad Message Length null", None)
            raise ConnectionError("Socket connection broken while connecting")
        self.client_id = clientId
        self._connected = True
        self._synchronise()
        self.connectedEvent.emit()
        return self

    def _synchronise(self) -> None:
        """What ib_insync's connectAsync does: open orders (with status events), completed
        orders, executions and commission reports (silently for executions), positions."""
        self._reset_client()
        highest = 0
        for server in self.orders:
            highest = max(highest, server.order.orderId)
            order = copy.copy(server.order)
            if server.done:
                order.filledQuantity = server.filled
                trade = ibc.Trade(
                    server.contract, order, ibc.OrderStatus(orderId=order.orderId, status=server.status)
                )
                self._trades[order.permId] = trade
                continue
            trade = ibc.Trade(
                server.contract, order, ibc.OrderStatus(orderId=order.orderId, status="PendingSubmit")
            )
            self._trades[(order.clientId, order.orderId)] = trade
            self._status_message(server)
        self.client._next_id = max(self.client._next_id, highest + 1)
        for contract, execution, report in self.executions:
            fill = ibc.Fill(contract, execution, ibc.CommissionReport(), execution.time)
            self._fills[execution.execId] = fill
            trade = next((t for t in self._trades.values() if t.order.permId == execution.permId), None)
            if trade is not None:
                trade.fills.append(fill)
                # ib_insync fires the commission event when the order is known
                self._commission_message(trade, fill, report)
            else:
                fill.commissionReport.execId = report.execId
                fill.commissionReport.commission = report.commission
                fill.commissionReport.currency = report.currency

    def disconnect(self) -> None:
        self._count("disconnect")
        if not self._connected:
            return
        self._connected = False
        self._wire = []
        self._reset_client()
        self.disconnectedEvent.emit()

    def isConnected(self) -> bool:
        return self._connected

    # --- I/O ------------------------------------------------------------------------------

    def sleep(self, secs: float = 0.02) -> bool:
        self._pump()
        return True

    def waitOnUpdate(self, timeout: float = 0) -> bool:
        if self._pump():
            return True
        time.sleep(min(timeout or 0.01, 0.01))  # nothing on the wire: let the clock move
        return False

    # --- requests -------------------------------------------------------------------------

    def _request(self, name: str) -> None:
        self._count(name)
        if not self._connected:
            raise ConnectionError("Not connected")
        self._pump()

    def managedAccounts(self) -> list[str]:
        return list(self.accounts)

    def reqCurrentTime(self) -> datetime:
        self._request("reqCurrentTime")
        return self.server_time

    def reqContractDetails(self, contract: Any) -> list[Any]:
        self._request("reqContractDetails")
        candidates = self.contracts.get(contract.symbol, [])
        if contract.primaryExchange:
            candidates = [c for c in candidates if c.primaryExchange == contract.primaryExchange]
        if not candidates:
            self.errorEvent.emit(
                self.client.getReqId(), 200, "No security definition has been found for the request", contract
            )
        return [ibc.ContractDetails(contract=copy.copy(c)) for c in candidates]

    def trades(self) -> list[Any]:
        return list(self._trades.values())

    def openTrades(self) -> list[Any]:
        return [t for t in self._trades.values() if t.orderStatus.status not in ibc.OrderStatus.DoneStates]

    def fills(self) -> list[Any]:
        return list(self._fills.values())

    def reqCompletedOrders(self, apiOnly: bool) -> list[Any]:
        self._request("reqCompletedOrders")
        result = []
        for server in self.orders:
            if server.done:
                order = copy.copy(server.order)
                order.filledQuantity = server.filled
                result.append(
                    ibc.Trade(
                        server.contract, order, ibc.OrderStatus(orderId=order.orderId, status=server.status)
                    )
                )
        return result

    def reqExecutions(self, execFilter: Any = None) -> list[Any]:
        self._request("reqExecutions")
        since = None
        if execFilter is not None and execFilter.time:
            since = datetime.strptime(execFilter.time, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        result = []
        for contract, execution, report in self.executions:
            if since is not None and execution.time < since:
                continue
            if execFilter is not None and execFilter.acctCode and execution.acctNumber != execFilter.acctCode:
                continue
            # As in ib_insync: a fresh Fill whose commission arrives on the stored one.
            fill = ibc.Fill(contract, execution, ibc.CommissionReport(), execution.time)
            stored = self._fills.setdefault(
                execution.execId, ibc.Fill(contract, execution, ibc.CommissionReport(), execution.time)
            )
            stored.commissionReport.execId = report.execId
            stored.commissionReport.commission = report.commission
            stored.commissionReport.currency = report.currency
            result.append(fill)
        return result

    def positions(self, account: str = "") -> list[Any]:
        if not self._connected:
            return []
        return [
            ibc.Position(acct, contract, qty, cost)
            for (acct, _), (contract, qty, cost) in self.server_positions.items()
            if not account or acct == account
        ]

    def accountSummary(self, account: str = "") -> list[Any]:
        self._request("accountSummary")
        acct = account or self.accounts[0]
        return [ibc.AccountValue(acct, tag, value, "USD", "") for tag, value in self.account_values.items()]

    # --- orders ---------------------------------------------------------------------------

    def placeOrder(self, contract: Any, order: Any) -> Any:
        self._count("placeOrder")
        order_id = order.orderId or self.client.getReqId()
        order.clientId = self.client_id
        order.orderId = order_id
        trade = ibc.Trade(contract, order, ibc.OrderStatus(orderId=order_id, status="PendingSubmit"), [], [])
        self._log(trade, "PendingSubmit")
        self._trades[(self.client_id, order_id)] = trade
        self.placed.append(order)
        self.newOrderEvent.emit(trade)
        if self.disconnect_on_place:
            self.drop_connection()
            return trade
        # IB's copy: the permId reaches the client's Order only with TWS's messages.
        server = ServerOrder(
            contract, copy.copy(order), status="PendingSubmit", transmitted=bool(order.transmit)
        )
        self.orders.append(server)
        if order.transmit:
            group = [s for s in self.orders if s.status == "PendingSubmit" and self._in_group(s, order)]
            for member in group:
                self._transmit(member)
        return trade

    def _in_group(self, server: ServerOrder, last: Any) -> bool:
        parent_id = last.parentId or last.orderId
        return server.order.orderId == parent_id or server.order.parentId == parent_id

    def _transmit(self, server: ServerOrder) -> None:
        server.transmitted = True
        if not self.ack:
            return
        server.order.permId = self._next_perm
        self._next_perm += 1
        rejection = self.rejections.get(server.order.orderRef)

        def acknowledge() -> None:
            if rejection is not None:
                server.status = "Inactive"
                self._status_message(server)
                if self.split_rejection:  # the reason arrives in a later read
                    self._send(lambda: self._error_on_order(server, *rejection))
                else:
                    self._error_on_order(server, *rejection)
                return
            server.status = "PreSubmitted" if server.order.parentId else "Submitted"
            self._status_message(server)

        self._send(acknowledge, delay=self.ack_delay)

    def _error_on_order(self, server: ServerOrder, code: int, message: str) -> None:
        """ib_insync's Wrapper.error for an order: cancel it (logged with the code), then
        emit the status and the error event."""
        server.error = (code, message)
        trade = self._trade_of(server)
        if server.status not in ("Filled", "Cancelled"):
            server.status = "Cancelled" if server.status != "Inactive" else "Inactive"
        if trade is not None and not trade.isDone():
            trade.orderStatus.status = "Cancelled"
            self._log(trade, "Cancelled", f"Error {code}, reqId {server.order.orderId}: {message}", code)
            self.orderStatusEvent.emit(trade)
        self.errorEvent.emit(server.order.orderId, code, message, server.contract)

    def cancelOrder(self, order: Any, manualCancelOrderTime: str = "") -> Any:
        self._count("cancelOrder")
        if not self._connected:
            raise ConnectionError("Not connected")
        trade = next((t for t in self._trades.values() if t.order.orderId == order.orderId), None)
        server = next((s for s in self.orders if s.order.orderId == order.orderId and not s.done), None)
        if trade is not None and not trade.isDone():
            trade.orderStatus.status = "PendingCancel"
            self._log(trade, "PendingCancel")
            self.orderStatusEvent.emit(trade)
        if server is None:
            self._send(
                lambda: self.errorEvent.emit(
                    order.orderId, 10147, "OrderId that needs to be cancelled is not found.", None
                )
            )
            return trade

        def confirm() -> None:
            if server.done:
                return
            server.status = "Cancelled"
            self._status_message(server)
            for child in self.orders:
                if child.order.parentId == server.order.orderId and not child.done and server.filled == 0:
                    child.status = "Cancelled"
                    self._status_message(child)

        self._send(confirm)
        return trade

    # --- test actions "at the broker" -----------------------------------------------------

    def add_contract(self, symbol: str, primary: str = "NASDAQ", con_id: int | None = None) -> Any:
        contract = ibc.Stock(symbol, primary, "USD", primaryExchange=primary)
        contract.conId = con_id or (abs(hash((symbol, primary))) % 10_000_000 + 1)
        self.contracts.setdefault(symbol, []).append(contract)
        return contract

    def add_position(self, symbol: str, quantity: float, avg_cost: float, account: str | None = None) -> None:
        account = account or self.accounts[0]
        contract = self.contracts.get(symbol, [None])[0] or self.add_contract(symbol)
        self.server_positions[(account, symbol)] = [contract, float(quantity), float(avg_cost)]

    def set_account(self, **values: str) -> None:
        self.account_values.update(values)

    def add_open_order(
        self,
        order_ref: str,
        symbol: str,
        side: str = "BUY",
        quantity: float = 10,
        limit_price: float | None = 100.0,
        status: str = "Submitted",
        client_id: int = 1,
        order_id: int = 1,
    ) -> ServerOrder:
        """An order already working at IB (placed by an earlier run of the engine)."""
        contract = self.contracts.get(symbol, [None])[0] or self.add_contract(symbol)
        order = (
            ibc.LimitOrder(side, quantity, limit_price) if limit_price else ibc.MarketOrder(side, quantity)
        )
        order.orderRef = order_ref
        order.orderId = order_id
        order.clientId = client_id
        order.permId = self._next_perm
        order.tif = "DAY"
        self._next_perm += 1
        server = ServerOrder(contract, order, status=status)
        self.orders.append(server)
        return server

    def fill(
        self,
        order_ref: str,
        quantity: float,
        price: float,
        commission: float = 1.0,
        at: datetime | None = None,
        exec_id: str | None = None,
    ) -> str:
        """Execute part of an order at IB; returns the execution id.

        Connected: orderStatus, execDetails and the commission report go on the wire.
        Disconnected: only IB knows, until the client re-synchronises.
        """
        server = self._server_order(order_ref)
        if server.filled + quantity > server.order.totalQuantity + 1e-9:
            raise ValueError(f"over-fill of {order_ref}")
        at = at or self._now()
        exec_id = exec_id or f"0000e0d5.{self._next_exec:08x}.01.01"
        self._next_exec += 1
        total = server.filled + quantity
        server.avg_price = (server.avg_price * server.filled + price * quantity) / total
        server.filled = total
        server.status = "Filled" if abs(server.remaining) < 1e-9 else "Submitted"
        execution = ibc.Execution(
            execId=exec_id,
            time=at,
            acctNumber=server.order.account or self.accounts[0],
            exchange="ISLAND",
            side="BOT" if server.order.action == "BUY" else "SLD",
            shares=float(quantity),
            price=float(price),
            permId=server.order.permId,
            clientId=server.order.clientId,
            orderId=server.order.orderId,
            cumQty=total,
            avgPrice=server.avg_price,
            orderRef=order_ref,
        )
        report = ibc.CommissionReport(execId=exec_id, commission=float(commission), currency="USD")
        self.executions.append((server.contract, execution, report))
        self._move_position(server, quantity, price)
        related = self._on_filled(server)
        snapshot = (server.status, server.filled, server.avg_price)

        def deliver() -> None:
            if self.status_first:
                self._status_message(server, snapshot)
            trade = self._trade_of(server)
            fill = ibc.Fill(server.contract, execution, ibc.CommissionReport(), at)
            if execution.execId not in self._fills:
                self._fills[execution.execId] = fill
                if trade is not None:
                    trade.fills.append(fill)
                    self._log(trade, trade.orderStatus.status, f"Fill {quantity}@{price}")
                self.execDetailsEvent.emit(trade, fill)
            if trade is not None:
                self._commission_message(trade, fill, report)
            if not self.status_first:
                self._status_message(server, snapshot)
            for other in related:
                self._status_message(other)

        self._send(deliver)
        return exec_id

    def _commission_message(self, trade: Any, fill: Any, report: Any) -> None:
        fill.commissionReport.execId = report.execId
        fill.commissionReport.commission = report.commission
        fill.commissionReport.currency = report.currency
        self.commissionReportEvent.emit(trade, fill, fill.commissionReport)

    def _move_position(self, server: ServerOrder, quantity: float, price: float) -> None:
        account = server.order.account or self.accounts[0]
        key = (account, server.contract.symbol)
        contract, qty, cost = self.server_positions.get(key, [server.contract, 0.0, 0.0])
        signed = quantity if server.order.action == "BUY" else -quantity
        new_qty = qty + signed
        if new_qty == 0:
            self.server_positions.pop(key, None)
            return
        if qty == 0 or (qty > 0) == (signed > 0):
            cost = (cost * abs(qty) + price * abs(signed)) / abs(new_qty)
        self.server_positions[key] = [contract, new_qty, cost]

    def _on_filled(self, server: ServerOrder) -> list[ServerOrder]:
        """Bracket behaviour: a filled parent activates its children; a filled child
        cancels its OCA siblings. Returns the orders whose status changed."""
        changed = []
        if server.status != "Filled":
            return changed
        for other in self.orders:
            if other is server or other.done:
                continue
            if other.order.parentId == server.order.orderId and other.status == "PreSubmitted":
                other.status = "Submitted"
                changed.append(other)
            elif server.order.ocaGroup and other.order.ocaGroup == server.order.ocaGroup:
                other.status = "Cancelled"
                changed.append(other)
        return changed

    def reject(self, order_ref: str, code: int = 201, message: str = "Order rejected - reason: test") -> None:
        """IB refuses an order after acknowledging it: Inactive, then the error."""
        server = self._server_order(order_ref)

        def deliver() -> None:
            server.status = "Inactive"
            self._status_message(server)
            self._error_on_order(server, code, message)

        self._send(deliver)

    def cancel_at_broker(self, order_ref: str) -> None:
        server = self._server_order(order_ref)
        server.status = "Cancelled"
        self._send(lambda: self._status_message(server))

    def error(self, req_id: int, code: int, message: str) -> None:
        """Any message code (1100, 1101, 1102, 100...) on the wire."""
        self._send(lambda: self.errorEvent.emit(req_id, code, message, None))

    def drop_connection(self) -> None:
        """The socket closes under the client (Gateway restart, network)."""
        if not self._connected:
            return
        self._connected = False
        self._wire = []
        self._reset_client()
        self.disconnectedEvent.emit()

    def restore(self) -> None:
        """TWS/Gateway is back and accepting connections."""
        self.listening = True
        self.handshake = "ok"


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def fake_with_aapl() -> FakeIB:
    """A fake IB that knows AAPL on NASDAQ (conId 265598)."""
    ib = FakeIB()
    ib.add_contract("AAPL", "NASDAQ", 265598)
    return ib


def quick_broker(fake: FakeIB) -> IBKRBroker:
    """An IBKRBroker on ``fake`` with short waits, immediate reconnects and no notices."""
    return IBKRBroker(
        "127.0.0.1",
        4002,
        7,
        ib=fake,
        ack_timeout=0.3,
        fill_wait=0.2,
        reconnect_delays=(0,),
        notice_sink=lambda *a: None,
    )
