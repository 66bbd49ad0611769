"""The paper broker's matching: its working orders against each new bar, by the fill model.

Fill rules (the backtester's: the same fill model and cash rule, :mod:`execution.fills`,
and the same costs, :mod:`execution.costs`):

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

:class:`PaperMatching` is the half of :class:`~execution.brokers.paper.PaperBroker` that
fills; the broker supplies ``cost_model``, ``_account()`` and ``_events``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from execution.brokers.base import BrokerEvent, FillReport, OrderUpdate
from execution.costs import commission_decimal, fill_price_decimal
from execution.fills import bar_fill_decimal, free_cash_decimal
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


def next_id(account: PaperAccount, prefix: str) -> str:
    """The next broker id; ``account`` is locked and saved with its sequence by the caller."""
    account.sequence += 1
    return f"{prefix}{account.pk}-{account.sequence}"


def fill_report(fill: PaperFill) -> FillReport:
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


def order_update(order: PaperOrder, ts: datetime, message: str = "") -> OrderUpdate:
    return OrderUpdate(
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
        status=order.status,
        filled_quantity=order.filled_quantity,
        avg_fill_price=order.avg_fill_price,
        timestamp=ts,
        message=message,
    )


class PaperMatching:
    """Bars in, fills out: the simulation half of the paper broker."""

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
                            emitted.append(order_update(sibling, ts, sibling.message))
                # Children of a filled parent become active on this same bar.
                for child in working:
                    if child.parent_id == order.id:
                        child.parent = order
            if not progressed or open_only:
                break
            pending = [w for w in eligible() if w.id not in done]

    @staticmethod
    def _fill_price(order: PaperOrder, o: Decimal, h: Decimal, low: Decimal) -> tuple[Decimal, bool] | None:
        """(raw price, slippage applies) if the order fills on this bar: the fill model."""
        return bar_fill_decimal(
            order.order_type, order.side == "buy", o, h, low, order.stop_price, order.limit_price
        )

    @staticmethod
    def _free_cash(
        account: PaperAccount, positions: dict[str, PaperPosition], symbol: str, bar_open: Decimal
    ) -> Decimal:
        """The cash rule: cash not held against open shorts (valued at this open, or their
        last close)."""
        last = account.last_bars or {}

        def price(p: PaperPosition) -> Decimal:
            if p.symbol == symbol:
                return bar_open
            return Decimal(last[p.symbol]["close"]) if p.symbol in last else p.avg_cost

        # every position is still open (this is the open of a bar: the exits have filled)
        held = ((p.quantity, price(p), False) for p in positions.values())
        return free_cash_decimal(account.cash, held)

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
            emitted.append(order_update(order, ts, order.message))
            return position.quantity
        commission = commission_decimal(self.cost_model, quantity, price)
        fill = PaperFill.objects.create(
            account=account,
            order=order,
            execution_id=next_id(account, "PX"),
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
        emitted.append(fill_report(fill))
        emitted.append(order_update(order, ts))
        held = position.quantity
        if order.status == OrderStatus.PARTIALLY_FILLED:
            # Cut to the cash: the remainder will never fill.
            order.status = OrderStatus.CANCELLED
            order.message = (
                f"remaining {order.quantity - order.filled_quantity:f} cancelled: insufficient cash"
            )
            order.save(update_fields=["status", "message", "updated_at"])
            emitted.append(order_update(order, ts, order.message))
        return held
