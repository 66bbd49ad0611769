"""Reads of positions, P&L and equity, derived from trades and last prices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils.dateparse import parse_datetime

from execution.models import EquitySnapshot, ExecutionState, PaperAccount, Trade, TradeDirection, TradeStatus
from execution.trades import exited_quantity
from marketdata.models import Bar
from marketdata.money import as_decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class Position:
    """An open trade with its mark: what pages show as a position."""

    trade: Trade
    symbol: str
    direction: str
    quantity: Decimal
    entry_price: Decimal
    last_price: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None

    @property
    def strategy_id(self) -> int | None:
        return self.trade.strategy_id


ENGINE_CURSOR_PREFIX = "engine.cursor."  # + timeframe: the last bar time the engine finished


def cursor_key(timeframe: str) -> str:
    """The ExecutionState key of the engine's cursor for ``timeframe`` ({"ts": ISO time})."""
    return f"{ENGINE_CURSOR_PREFIX}{timeframe}"


def engine_cursor(timeframe: str) -> datetime | None:
    """The last bar time of ``timeframe`` the engine finished, as it saved it."""
    row = ExecutionState.objects.filter(key=cursor_key(timeframe)).first()
    return parse_datetime(row.value["ts"]) if row and row.value.get("ts") else None


def marking_time() -> datetime | None:
    """The newest bar time the engine has finished, or None before any engine ran.

    Positions are marked at the closes the engine has seen: while it replays history (the
    demo, a ``--from``/``--to`` run) the bars after its cursor are the future, and marking
    at the newest stored close would show P&L from it."""
    times = [
        parse_datetime(value["ts"])
        for value in ExecutionState.objects.filter(key__startswith=ENGINE_CURSOR_PREFIX).values_list(
            "value", flat=True
        )
        if isinstance(value, dict) and value.get("ts")
    ]
    return max((t for t in times if t is not None), default=None)


def last_prices(stock_ids: Iterable[int], as_of: datetime | None = None) -> dict[int, Decimal]:
    """The newest close of each stock (any timeframe, newest bar wins), of the bars up to
    ``as_of`` when given. One indexed query per stock: a single correlated subquery over
    all of them takes seconds on SQLite."""
    prices: dict[int, Decimal] = {}
    for stock_id in set(stock_ids):
        bars = Bar.objects.filter(stock_id=stock_id)
        if as_of is not None:
            bars = bars.filter(timestamp__lte=as_of)
        close = bars.order_by("-timestamp").values_list("close", flat=True).first()
        if close is not None:
            prices[stock_id] = close
    return prices


def open_positions(strategy=None) -> list[Position]:
    """Open trades marked at the newest close the engine has seen (:func:`marking_time`)."""
    trades = list(
        Trade.objects.filter(status=TradeStatus.OPEN)
        .select_related("stock", "strategy")
        .order_by("entry_time")
    )
    if strategy is not None:
        trades = [t for t in trades if t.strategy_id == getattr(strategy, "pk", strategy)]
    prices = last_prices([t.stock_id for t in trades], as_of=marking_time()) if trades else {}
    out = []
    for trade in trades:
        quantity = trade.quantity - exited_quantity(trade)
        price = prices.get(trade.stock_id)
        sign = 1 if trade.direction == TradeDirection.LONG else -1
        value = None if price is None else quantity * price * sign
        pnl = None if price is None else (price - trade.entry_price) * quantity * sign
        out.append(
            Position(
                trade, trade.stock.symbol, trade.direction, quantity, trade.entry_price, price, value, pnl
            )
        )
    return out


@dataclass(frozen=True)
class Equity:
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    open_positions: int


def starting_cash() -> Decimal:
    account = PaperAccount.objects.filter(name="default").first()
    return account.starting_cash if account else as_decimal(settings.PAPER_STARTING_CASH)


def equity_now() -> Equity:
    """Equity from the trades: starting cash + realised P&L - fees of open trades +
    open positions at their last price."""
    realized = Trade.objects.filter(status=TradeStatus.CLOSED).aggregate(p=Sum("realized_pnl"))["p"] or ZERO
    open_fees = Trade.objects.filter(status=TradeStatus.OPEN).aggregate(f=Sum("fees"))["f"] or ZERO
    positions = open_positions()
    unrealized = sum((p.unrealized_pnl or ZERO for p in positions), ZERO)
    cost = sum(
        (p.entry_price * p.quantity * (1 if p.direction == TradeDirection.LONG else -1) for p in positions),
        ZERO,
    )
    cash = starting_cash() + realized - open_fees - cost
    value = cost + unrealized
    return Equity(cash + value, cash, value, unrealized, realized, len(positions))


def equity_curve(start: datetime | None = None, end: datetime | None = None, max_points: int = 2000):
    """[(timestamp, equity)] from the snapshots, thinned to ``max_points``."""
    qs = EquitySnapshot.objects.order_by("timestamp")
    if start:
        qs = qs.filter(timestamp__gte=start)
    if end:
        qs = qs.filter(timestamp__lte=end)
    rows = list(qs.values_list("timestamp", "equity"))
    if len(rows) > max_points:
        step = -(-len(rows) // max_points)
        rows = rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else [])
    return rows
