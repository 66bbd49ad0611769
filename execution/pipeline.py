"""From a strategy's signal on a closed bar to an order at the broker.

The same decisions as the backtester's loop (execution/backtest/engine.py), in the same
order, with the same shared code (sizing, stop levels, protections):

- exit signals first: an open position with an exit signal is closed at the next open;
- then entries, symbol by symbol: refused when a position (or an entry) is already there,
  when a protection or the position limit blocks it, when the stop the settings ask for
  cannot be computed (ATR warm-up); otherwise sized on this close's equity and free
  cash (:func:`execution.sizing.position_size_decimal`) and checked by the live risk
  rules (:mod:`execution.risk`).

Each signal gets a deterministic client order id (strategy, symbol, signal bar), so
processing the same bar again after a crash finds its order instead of sending another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q

from execution import exits, order_lifecycle, risk
from execution.brokers.base import AccountSnapshot, Broker
from execution.fills import free_cash_decimal
from execution.models import (
    OPEN_ORDER_STATUSES,
    Order,
    OrderPurpose,
    OrderSide,
    Trade,
    TradeDirection,
    TradeStatus,
)
from execution.order_lifecycle import OrderIntent, bar_key, make_client_order_id
from execution.sizing import position_size_decimal
from execution.stops import levels
from execution.trades import exited_quantity
from marketdata.models import Stock
from strategies.models import Strategy, TradeSignal

ZERO = Decimal("0")
ENTRY_SIGNALS = {"entry_long": TradeDirection.LONG, "entry_short": TradeDirection.SHORT}
EXIT_SIGNALS = {"exit_long": TradeDirection.LONG, "exit_short": TradeDirection.SHORT}


@dataclass
class SignalContext:
    """One signal of one strategy on one symbol's newest closed bar."""

    strategy: Strategy
    stock: Stock
    signal_type: str
    bar_time: datetime  # open time of the signal bar
    close: Decimal
    now: datetime  # the engine clock: the bar's close in a replay
    reasons: list[str] = field(default_factory=list)
    indicators: dict[str, Any] = field(default_factory=dict)
    atr: float | None = None
    market_context: dict[str, Any] = field(default_factory=dict)
    signal: TradeSignal | None = None


@dataclass
class Book:
    """Equity and free cash for sizing the entries of one bar; entries queued on this bar
    take their cash out, as in the backtester."""

    equity: Decimal
    free_cash: Decimal
    last_prices: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_broker(cls, account: AccountSnapshot, last_prices: dict[str, Decimal]) -> Book:
        """Free cash by the cash rule (:mod:`execution.fills`): cash, plus longs on their way
        out valued at the last close, less cash held against shorts, less what open entry
        orders will need."""
        exiting = set(
            Order.objects.filter(purpose=OrderPurpose.EXIT, status__in=OPEN_ORDER_STATUSES).values_list(
                "trade_id", flat=True
            )
        )
        short = TradeDirection.SHORT
        rows = (  # only the trades the cash rule counts: shorts, and those on their way out
            Trade.objects.filter(status=TradeStatus.OPEN)
            .filter(Q(pk__in=exiting) | Q(direction=short))
            .values_list("pk", "direction", "quantity", "entry_price", "stock__symbol")
        )
        free = free_cash_decimal(
            account.cash,
            (
                (
                    -quantity if direction == short else quantity,
                    last_prices.get(symbol, entry_price),
                    pk in exiting,
                )
                for pk, direction, quantity, entry_price, symbol in rows
            ),
        )
        for quantity, context in Order.objects.filter(
            purpose=OrderPurpose.ENTRY, status__in=OPEN_ORDER_STATUSES, trade__isnull=True
        ).values_list("quantity", "context"):
            free -= quantity * Decimal(str((context or {}).get("price", 0)))
        return cls(equity=account.net_liquidation, free_cash=free, last_prices=last_prices)


def _existing(cid: str) -> Order | None:
    return Order.objects.select_related("stock", "strategy").filter(client_order_id=cid).first()


def _resume(order: Order, broker: Broker, now: datetime) -> Order:
    """The order of this signal already exists (the bar is processed again): send it if it
    never was, nothing else."""
    if order.status == "pending_submit":
        return order_lifecycle.submit_order(order, broker, at=now)
    return order


def open_trade(strategy: Strategy, stock: Stock, direction: str | None = None) -> Trade | None:
    qs = Trade.objects.filter(strategy=strategy, stock=stock, status=TradeStatus.OPEN)
    if direction:
        qs = qs.filter(direction=direction)
    return qs.select_related("stock", "strategy").order_by("entry_time").first()


def execute_exit(ctx: SignalContext, broker: Broker) -> Order | None:
    """Close the open position the exit signal is about (none: nothing to do)."""
    cid = make_client_order_id("X", ctx.strategy.pk, ctx.stock.symbol, bar_key(ctx.bar_time), ctx.signal_type)
    existing = _existing(cid)
    if existing is not None:
        return _resume(existing, broker, ctx.now)
    trade = open_trade(ctx.strategy, ctx.stock, EXIT_SIGNALS[ctx.signal_type])
    if trade is None:
        return None
    for other in exits.open_orders_of(trade):
        if other.purpose != OrderPurpose.EXIT:
            order_lifecycle.cancel_order(
                other, broker, reason=f"exit signal on {ctx.bar_time:%Y-%m-%d %H:%M}"
            )
    if exits.open_orders_of(trade, purposes=[OrderPurpose.EXIT]):
        return None
    remaining = trade.quantity - exited_quantity(trade)
    if remaining <= 0:
        return None
    order, _ = order_lifecycle.create_order(
        OrderIntent(
            stock=ctx.stock,
            side=OrderSide.SELL if trade.direction == TradeDirection.LONG else OrderSide.BUY,
            quantity=remaining,
            purpose=OrderPurpose.EXIT,
            strategy=ctx.strategy,
            signal=ctx.signal,
            trade=trade,
            client_order_id=cid,
            context={
                "exit_reason": "signal",
                "bar_time": ctx.bar_time.isoformat(),
                "price": str(ctx.close),
                "reasons": ctx.reasons,
            },
        ),
        broker_name=broker.name,
    )
    return order_lifecycle.submit_order(order, broker, at=ctx.now)


def _stop_distance(ctx: SignalContext, direction: str) -> tuple[Decimal | None, str | None]:
    """The stop distance for sizing, from the signal close (as the backtester does); an
    error text when the settings ask for a stop that cannot be computed yet."""
    strategy = ctx.strategy
    if strategy.stop_loss_type == "none":
        return None, None
    stop, _ = levels(direction, float(ctx.close), ctx.atr, strategy)
    if stop is None:
        return None, f"the {strategy.stop_loss_type} stop-loss cannot be computed yet (ATR warm-up)"
    return abs(ctx.close - Decimal(repr(stop))), None


def execute_entry(ctx: SignalContext, broker: Broker, book: Book) -> Order | None:
    """Size, check and send an entry; a refused entry is a ``risk.rejected`` event."""
    strategy, stock = ctx.strategy, ctx.stock
    direction = ENTRY_SIGNALS[ctx.signal_type]
    if direction == TradeDirection.SHORT and not strategy.allow_short:
        return None
    cid = make_client_order_id("E", strategy.pk, stock.symbol, bar_key(ctx.bar_time))
    existing = _existing(cid)
    if existing is not None:
        return _resume(existing, broker, ctx.now)
    meta = {"signal_type": ctx.signal_type, "bar_time": ctx.bar_time.isoformat()}
    # The backtester refuses an entry while an exit of the same symbol is pending and a
    # cooldown is configured (the cooldown starts at that exit's fill).
    cooldown = int((strategy.risk_settings or {}).get("cooldown_bars", 0) or 0)
    pending_exit = Order.objects.filter(
        strategy=strategy, stock=stock, purpose=OrderPurpose.EXIT, status__in=OPEN_ORDER_STATUSES
    ).exists()
    if pending_exit and cooldown > 0:
        risk.reject(
            strategy, stock, risk.RiskRejected("protection", "cooldown: an exit is still pending"), **meta
        )
        return None
    distance, error = _stop_distance(ctx, direction)
    if error:
        risk.reject(strategy, stock, risk.RiskRejected("stop_unavailable", error), **meta)
        return None
    quantity = position_size_decimal(
        strategy.sizing_method,
        book.equity,
        book.free_cash,
        ctx.close,
        distance,
        strategy.position_fraction,
        strategy.risk_per_trade,
        strategy.fractional_shares,
    )
    check = risk.EntryCheck(
        strategy=strategy,
        stock=stock,
        side=OrderSide.BUY if direction == TradeDirection.LONG else OrderSide.SELL,
        quantity=quantity,
        price=ctx.close,
        bar_time=ctx.bar_time,
        now=ctx.now,
        equity=book.equity,
        free_cash=book.free_cash,
        timeframe=strategy.timeframe,
    )
    try:
        risk.check_entry(check)
        if quantity <= 0:
            raise risk.RiskRejected(
                "size", f"position size is zero (equity {book.equity:.2f}, free cash {book.free_cash:.2f})"
            )
    except risk.RiskRejected as exc:
        risk.reject(strategy, stock, exc, **meta)
        return None
    book.free_cash -= quantity * ctx.close
    market_context = dict(ctx.market_context)
    market_context.setdefault("reasons", ctx.reasons)
    market_context.setdefault("indicators", ctx.indicators)
    order, _ = order_lifecycle.create_order(
        OrderIntent(
            stock=stock,
            side=check.side,
            quantity=quantity,
            purpose=OrderPurpose.ENTRY,
            strategy=strategy,
            signal=ctx.signal,
            client_order_id=cid,
            context={
                "bar_time": ctx.bar_time.isoformat(),
                "price": str(ctx.close),
                "atr": ctx.atr,
                "market_context": market_context,
            },
        ),
        broker_name=broker.name,
    )
    return order_lifecycle.submit_order(order, broker, at=ctx.now)


def execute(ctx: SignalContext, broker: Broker, book: Book) -> Order | None:
    if ctx.signal_type in EXIT_SIGNALS:
        return execute_exit(ctx, broker)
    return execute_entry(ctx, broker, book)
