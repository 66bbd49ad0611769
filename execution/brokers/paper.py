"""The paper broker: simulated fills against closed bars, its books in the database.

Fills: :mod:`execution.brokers.paper_matching` (the backtester's fill rules).

Orders, fills, cash and positions live in ``paper_*`` tables, so the account survives a
restart; the event queue does not need to, because on start the engine reconciles with
:meth:`open_orders`, :meth:`find_order` and :meth:`executions`, as it would with IBKR.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from execution.brokers.base import (
    AccountSnapshot,
    BracketRequest,
    Broker,
    BrokerError,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    BrokerUnavailable,
    ConnectionEvent,
    FillReport,
    OrderRejected,
    OrderRequest,
    SubmitAck,
)
from execution.brokers.paper_matching import WORKING, PaperMatching, fill_report, next_id, order_update
from execution.costs import CostModel
from execution.models import OrderStatus, PaperAccount, PaperFill, PaperOrder, PaperPosition

ZERO = Decimal("0")


class PaperBroker(PaperMatching, Broker):
    """A simulated broker with persisted books; its fills are :class:`PaperMatching`'s."""

    name = "paper"

    def __init__(
        self,
        account_name: str = "default",
        starting_cash: Decimal | str | None = None,
        cost_model: CostModel | None = None,
    ):
        self.account_name = account_name
        self.starting_cash = Decimal(str(starting_cash or settings.PAPER_STARTING_CASH))
        self.cost_model = cost_model or CostModel()
        self._connected = False
        self._events: deque[BrokerEvent] = deque()

    # --- connection ---------------------------------------------------------------------
    def connect(self) -> None:
        self._account()
        if not self._connected:
            self._connected = True
            self._events.append(ConnectionEvent(True, "paper broker ready"))

    def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def _require_connection(self) -> None:
        if not self._connected:
            raise BrokerUnavailable("paper broker is not connected")

    def _account(self, lock: bool = False) -> PaperAccount:
        queryset = PaperAccount.objects.select_for_update() if lock else PaperAccount.objects
        account = queryset.filter(name=self.account_name).first()
        if account is None:
            account, _ = PaperAccount.objects.get_or_create(
                name=self.account_name,
                defaults={"starting_cash": self.starting_cash, "cash": self.starting_cash},
            )
        return account

    # --- orders -------------------------------------------------------------------------
    @staticmethod
    def _validate(request: OrderRequest) -> None:
        if request.side not in ("buy", "sell"):
            raise OrderRejected(f"side must be buy or sell, got {request.side!r}")
        if request.quantity <= 0:
            raise OrderRejected(f"quantity must be positive, got {request.quantity}")
        needs_limit = request.order_type in ("limit", "stop_limit")
        needs_stop = request.order_type in ("stop", "stop_limit")
        if request.order_type not in ("market", "limit", "stop", "stop_limit"):
            raise OrderRejected(f"unsupported order type {request.order_type!r}")
        if needs_limit and not (request.limit_price and request.limit_price > 0):
            raise OrderRejected(f"{request.order_type} order needs a positive limit price")
        if needs_stop and not (request.stop_price and request.stop_price > 0):
            raise OrderRejected(f"{request.order_type} order needs a positive stop price")

    def _place(
        self, account: PaperAccount, request: OrderRequest, parent: PaperOrder | None = None, oco: str = ""
    ) -> tuple[PaperOrder, bool]:
        existing = PaperOrder.objects.filter(account=account, client_order_id=request.client_order_id).first()
        if existing is not None:
            # The same client order id twice is the same order: never a second one.
            return existing, False
        self._validate(request)
        last = (account.last_bars or {}).get(request.symbol)
        order = PaperOrder.objects.create(
            account=account,
            client_order_id=request.client_order_id,
            broker_order_id=next_id(account, "PO"),
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            status=OrderStatus.SUBMITTED,
            parent=parent,
            oco_group=oco,
            after_bar=parse_datetime(last["ts"]) if last else None,
        )
        return order, True

    def _ack(self, order: PaperOrder) -> SubmitAck:
        return SubmitAck(order.client_order_id, order.broker_order_id, None)

    def _emit_status(self, order: PaperOrder, at: datetime | None = None, message: str = "") -> None:
        self._events.append(order_update(order, at or timezone.now(), message))

    def submit(self, request: OrderRequest) -> SubmitAck:
        self._require_connection()
        with transaction.atomic():
            account = self._account(lock=True)
            order, created = self._place(account, request)
            account.save(update_fields=["sequence", "updated_at"])
        if created:
            self._emit_status(order)
        return self._ack(order)

    def submit_bracket(self, bracket: BracketRequest) -> list[SubmitAck]:
        """Parent and children as one group: the children work once the parent fills and
        cancel each other."""
        self._require_connection()
        with transaction.atomic():
            account = self._account(lock=True)
            parent, created = self._place(account, bracket.parent)
            orders = [(parent, created)]
            for child in (bracket.take_profit, bracket.stop_loss):
                if child is not None:
                    orders.append(self._place(account, child, parent=parent, oco=parent.client_order_id))
            account.save(update_fields=["sequence", "updated_at"])
        for order, was_created in orders:
            if was_created:
                self._emit_status(order)
        return [self._ack(order) for order, _ in orders]

    def submit_oco(self, requests: list[OrderRequest]) -> list[SubmitAck]:
        self._require_connection()
        group = requests[0].client_order_id if requests else ""
        with transaction.atomic():
            account = self._account(lock=True)
            orders = [self._place(account, r, oco=group) for r in requests]
            account.save(update_fields=["sequence", "updated_at"])
        for order, created in orders:
            if created:
                self._emit_status(order)
        return [self._ack(order) for order, _ in orders]

    def cancel(self, client_order_id: str) -> None:
        self._require_connection()
        with transaction.atomic():
            account = self._account(lock=True)
            order = PaperOrder.objects.filter(account=account, client_order_id=client_order_id).first()
            if order is None:
                raise BrokerError(f"paper broker has no order {client_order_id!r}")
            cancelled = self._cancel_tree(order, "cancelled on request")
        for item in cancelled:
            self._emit_status(item)

    def _cancel_tree(self, order: PaperOrder, message: str) -> list[PaperOrder]:
        cancelled = []
        for item in [order, *order.children.all()]:
            if item.status in WORKING:
                item.status = OrderStatus.CANCELLED
                item.message = message
                item.save(update_fields=["status", "message", "updated_at"])
                cancelled.append(item)
        return cancelled

    # --- queries ------------------------------------------------------------------------
    @staticmethod
    def _broker_order(order: PaperOrder) -> BrokerOrder:
        return BrokerOrder(
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            status=order.status,
            filled_quantity=order.filled_quantity,
            avg_fill_price=order.avg_fill_price,
            order_type=order.order_type,
        )

    def open_orders(self) -> list[BrokerOrder]:
        self._require_connection()
        account = self._account()
        return [self._broker_order(o) for o in PaperOrder.objects.filter(account=account, status__in=WORKING)]

    def find_order(self, client_order_id: str) -> BrokerOrder | None:
        self._require_connection()
        order = PaperOrder.objects.filter(account=self._account(), client_order_id=client_order_id).first()
        return None if order is None else self._broker_order(order)

    def executions(self, since: datetime | None = None) -> list[FillReport]:
        self._require_connection()
        fills = PaperFill.objects.filter(account=self._account()).select_related("order")
        if since is not None:
            fills = fills.filter(timestamp__gte=since)
        return [fill_report(f) for f in fills.order_by("timestamp", "id")]

    def positions(self) -> list[BrokerPosition]:
        self._require_connection()
        return [
            BrokerPosition(p.symbol, p.quantity, p.avg_cost)
            for p in PaperPosition.objects.filter(account=self._account()).exclude(quantity=0)
        ]

    def account(self) -> AccountSnapshot:
        self._require_connection()
        account = self._account()
        last = account.last_bars or {}
        value = ZERO
        for p in PaperPosition.objects.filter(account=account).exclude(quantity=0):
            price = Decimal(last[p.symbol]["close"]) if p.symbol in last else p.avg_cost
            value += p.quantity * price
        return AccountSnapshot(
            net_liquidation=account.cash + value,
            buying_power=max(account.cash, ZERO),
            cash=account.cash,
            extra={"starting_cash": str(account.starting_cash)},
        )

    def poll_events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        events = list(self._events)
        self._events.clear()
        return events
