"""The paper broker: simulated fills against closed bars, its books in the database.

Fill rules (the backtester's, through the same cost code in :mod:`execution.costs`):

- An order may fill only on a bar that opens after the last bar the broker had seen for
  its symbol when the order arrived (a signal on bar t's close fills on bar t+1).
- Market orders fill at that bar's open, with slippage; commission from the cost model.
- Stop orders trigger when the bar trades through the stop (a buy stop at the high, a
  sell stop at the low) and fill at the stop, or at the open when the bar gaps through
  it, with slippage. Limit orders fill when the bar reaches the limit, at the limit or
  at a better open, without slippage. Stop-limit orders trigger like stops and then fill
  at their limit if the bar reaches it.
- Bracket children wait for their parent to fill and then work on the same bar (they
  were placed at the fill); siblings of a one-cancels-other group are cancelled as soon
  as one fills. When a stop and a target are both reachable in one bar, the stop counts
  first (the conservative assumption, as in the backtester).

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
    OrderUpdate,
    SubmitAck,
)
from execution.costs import CostModel, commission_decimal, fill_price_decimal
from execution.models import OrderStatus, PaperAccount, PaperFill, PaperOrder, PaperPosition
from execution.sizing import fit_to_cash_decimal

WORKING = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
ZERO = Decimal("0")


def to_decimal(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # Bars are stored with 6 decimals; a float64 read back rounds to the same value.
        return Decimal(repr(round(value, 6)))
    return Decimal(str(value))


class PaperBroker(Broker):
    """A simulated broker with persisted books; see the module docstring for its rules."""

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

    @staticmethod
    def _next_id(account: PaperAccount, prefix: str) -> str:
        """The next broker id; ``account`` is locked and saved with its sequence by the caller."""
        account.sequence += 1
        return f"{prefix}{account.pk}-{account.sequence}"

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
            broker_order_id=self._next_id(account, "PO"),
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
        self._events.append(
            OrderUpdate(
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                status=order.status,
                filled_quantity=order.filled_quantity,
                avg_fill_price=order.avg_fill_price,
                timestamp=at or timezone.now(),
                message=message,
            )
        )

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

    @staticmethod
    def _report(fill: PaperFill) -> FillReport:
        order = fill.order
        return FillReport(
            execution_id=fill.execution_id,
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=fill.quantity,
            price=fill.price,
            timestamp=fill.timestamp,
            commission=fill.commission,
        )

    def executions(self, since: datetime | None = None) -> list[FillReport]:
        self._require_connection()
        fills = PaperFill.objects.filter(account=self._account()).select_related("order")
        if since is not None:
            fills = fills.filter(timestamp__gte=since)
        return [self._report(f) for f in fills.order_by("timestamp", "id")]

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

    # --- the simulation -----------------------------------------------------------------
    def on_bar_open(self, symbol: str, bar: dict) -> None:
        """The first half of a bar: market orders fill at its open.

        The engine then applies those fills (and places the protective stop and target of
        new positions) before :meth:`on_bar` runs the rest of the bar, so that orders
        placed at the open work on that same bar, as in the backtester.
        """
        self.on_bars_open({symbol: bar})

    def on_bar(self, symbol: str, bar: dict) -> None:
        """Fill the working orders of ``symbol`` against a newly closed bar."""
        self.on_bars({symbol: bar})

    def on_bars_open(self, bars: dict[str, dict]) -> None:
        """The opens of several symbols' bars at one time: every exit first, then the
        entries in symbol order, so entries see the cash all exits freed (the
        backtester's order)."""
        self._process(bars, open_only=True)

    def on_bars(self, bars: dict[str, dict]) -> None:
        """The rest of several symbols' bars: stops and limits against their ranges."""
        self._process(bars, open_only=False)

    def _process(self, bars: dict[str, dict], open_only: bool) -> None:
        emitted: list[BrokerEvent] = []
        with transaction.atomic():
            account = self._account(lock=True)
            working_all = list(
                PaperOrder.objects.filter(account=account, symbol__in=list(bars), status__in=WORKING)
                .select_related("parent")
                .order_by("id")
            )
            if working_all:
                by_symbol: dict[str, list[PaperOrder]] = {}
                for order in working_all:
                    by_symbol.setdefault(order.symbol, []).append(order)
                # the account is locked: its positions read once serve every fill of this pass
                positions = {p.symbol: p for p in PaperPosition.objects.filter(account=account)}
                passes = (True, False) if open_only else (None,)
                for reducing in passes:
                    for symbol, bar in bars.items():
                        if symbol in by_symbol:
                            self._process_symbol(
                                account, positions, by_symbol[symbol], bar, open_only, reducing, emitted
                            )
            fields = ["cash", "sequence", "updated_at"]
            if not open_only:
                last = dict(account.last_bars or {})
                for symbol, bar in bars.items():
                    last[symbol] = {
                        "ts": bar["timestamp"].isoformat(),
                        "close": str(to_decimal(bar["close"])),
                    }
                account.last_bars = last
                fields.append("last_bars")
            account.save(update_fields=fields)
        self._events.extend(emitted)

    def _process_symbol(
        self,
        account: PaperAccount,
        positions: dict[str, PaperPosition],
        working: list[PaperOrder],
        bar: dict,
        open_only: bool,
        reducing: bool | None,
        emitted: list[BrokerEvent],
    ) -> None:
        ts = bar["timestamp"]
        o, h, low = to_decimal(bar["open"]), to_decimal(bar["high"]), to_decimal(bar["low"])
        position = positions.get(working[0].symbol)
        held = position.quantity if position else ZERO

        def reduces(order: PaperOrder) -> bool:
            return held != 0 and (held > 0) != (order.side == "buy")

        def rank(order: PaperOrder) -> tuple:
            # Market orders first (they fill at the open), exits before entries so the
            # cash they free is there; then stops before limits, so a bar that reaches
            # both a stop and a target counts the stop.
            kind = {"market": 0, "stop": 1, "stop_limit": 2, "limit": 3}[order.order_type]
            return (kind, 0 if reduces(order) else 1, order.id)

        def eligible() -> list[PaperOrder]:
            found = [
                w
                for w in working
                if w.status in WORKING
                and (w.after_bar is None or w.after_bar < ts)
                and (not open_only or w.order_type == "market")
            ]
            if reducing is not None:
                found = [w for w in found if reduces(w) == reducing]
            return found

        done: set[int] = set()
        pending = eligible()
        while pending:
            progressed = False
            for order in sorted(pending, key=rank):
                if order.id in done or order.status not in WORKING:
                    continue
                if order.parent_id and order.parent.status != OrderStatus.FILLED:
                    continue
                priced = self._fill_price(order, o, h, low)
                if priced is None:
                    continue
                held = self._fill(account, positions, order, priced, ts, o, emitted)
                done.add(order.id)
                progressed = True
                if order.oco_group and order.filled_quantity > 0:
                    for sibling in working:
                        if (
                            sibling.oco_group == order.oco_group
                            and sibling.id != order.id
                            and sibling.status in WORKING
                        ):
                            sibling.status = OrderStatus.CANCELLED
                            sibling.message = f"one-cancels-other: {order.client_order_id} filled"
                            sibling.save(update_fields=["status", "message", "updated_at"])
                            done.add(sibling.id)
                            emitted.append(self._update(sibling, ts, sibling.message))
                # Children of a filled parent become active on this same bar.
                for child in working:
                    if child.parent_id == order.id:
                        child.parent = order
            if not progressed or open_only:
                break
            pending = [w for w in eligible() if w.id not in done]

    @staticmethod
    def _fill_price(order: PaperOrder, o: Decimal, h: Decimal, low: Decimal) -> tuple[Decimal, bool] | None:
        """(raw price, slippage applies) if the order fills on this bar."""
        buy = order.side == "buy"
        if order.order_type == "market":
            return o, True
        if order.order_type in ("stop", "stop_limit"):
            stop = order.stop_price
            if buy and h < stop or not buy and low > stop:
                return None
            trigger = max(o, stop) if buy else min(o, stop)
            if order.order_type == "stop":
                return trigger, True
            limit = order.limit_price
            if buy and low <= limit or not buy and h >= limit:
                return (min(trigger, limit) if buy else max(trigger, limit)), False
            return None
        limit = order.limit_price
        if buy and low <= limit:
            return min(o, limit), False
        if not buy and h >= limit:
            return max(o, limit), False
        return None

    def _update(self, order: PaperOrder, ts: datetime, message: str = "") -> OrderUpdate:
        return OrderUpdate(
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            status=order.status,
            filled_quantity=order.filled_quantity,
            avg_fill_price=order.avg_fill_price,
            timestamp=ts,
            message=message,
        )

    @staticmethod
    def _free_cash(
        account: PaperAccount, positions: dict[str, PaperPosition], symbol: str, bar_open: Decimal
    ) -> Decimal:
        """Cash not held against open shorts (valued at this open, or their last close)."""
        free = account.cash
        last = account.last_bars or {}
        for p in positions.values():
            if p.quantity >= 0:
                continue
            if p.symbol == symbol:
                price = bar_open
            else:
                price = Decimal(last[p.symbol]["close"]) if p.symbol in last else p.avg_cost
            free += p.quantity * price
        return free

    def _fill(
        self,
        account: PaperAccount,
        positions: dict[str, PaperPosition],
        order: PaperOrder,
        priced: tuple[Decimal, bool],
        ts: datetime,
        bar_open: Decimal,
        emitted: list[BrokerEvent],
    ) -> Decimal:
        """Fill what the cash allows of ``order`` at ``priced``; returns the position after."""
        raw, slips = priced
        buy = order.side == "buy"
        price = fill_price_decimal(self.cost_model, raw, buy) if slips else raw
        quantity = order.quantity - order.filled_quantity
        position = positions.get(order.symbol)
        if position is None:
            position = PaperPosition.objects.create(account=account, symbol=order.symbol)
            positions[order.symbol] = position
        opening = position.quantity == 0 or (position.quantity > 0) == buy
        if opening:
            # No margin: an order that opens or adds to a position fills only what the free
            # cash pays for (the backtester's fit_to_cash); the rest is cancelled.
            fractional = quantity != quantity.to_integral_value()
            free = self._free_cash(account, positions, order.symbol, bar_open)
            quantity = fit_to_cash_decimal(quantity, price, free, self.cost_model, fractional)
        if quantity <= 0:
            order.status = OrderStatus.CANCELLED
            order.message = "insufficient cash to fill"
            order.save(update_fields=["status", "message", "updated_at"])
            emitted.append(self._update(order, ts, order.message))
            return position.quantity
        commission = commission_decimal(self.cost_model, quantity, price)
        fill = PaperFill.objects.create(
            account=account,
            order=order,
            execution_id=self._next_id(account, "PX"),
            timestamp=ts,
            quantity=quantity,
            price=price,
            commission=commission,
        )
        previous = order.filled_quantity
        order.filled_quantity += quantity
        order.avg_fill_price = (
            price
            if previous == 0
            else ((previous * order.avg_fill_price + quantity * price) / order.filled_quantity).quantize(
                Decimal("0.000001")
            )
        )
        order.status = (
            OrderStatus.FILLED if order.filled_quantity >= order.quantity else OrderStatus.PARTIALLY_FILLED
        )
        order.save(update_fields=["filled_quantity", "avg_fill_price", "status", "updated_at"])
        signed = quantity if buy else -quantity
        account.cash -= signed * price + commission
        new_quantity = position.quantity + signed
        if new_quantity == 0:
            position.avg_cost = ZERO
        elif position.quantity == 0 or (position.quantity > 0) != (new_quantity > 0):
            position.avg_cost = price
        elif opening:  # adding to the position
            position.avg_cost = (position.quantity * position.avg_cost + signed * price) / new_quantity
        position.quantity = new_quantity
        position.save(update_fields=["quantity", "avg_cost"])
        emitted.append(self._report(fill))
        emitted.append(self._update(order, ts))
        held = position.quantity
        if order.status == OrderStatus.PARTIALLY_FILLED:
            # Cut to the cash: the remainder will never fill.
            order.status = OrderStatus.CANCELLED
            order.message = (
                f"remaining {order.quantity - order.filled_quantity:f} cancelled: insufficient cash"
            )
            order.save(update_fields=["status", "message", "updated_at"])
            emitted.append(self._update(order, ts, order.message))
        return held
