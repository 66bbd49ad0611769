"""Reports on execution's trades: a trade's whole story (signal, orders, fills, journal)
and the trade CSV export. Reads only; the trade page, the trade CSV download and the admin
use them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from execution.models import Order, Trade
from strategies.models import StrategyEvent, TradeSignal

TRADE_CSV_COLUMNS = [
    "id",
    "strategy",
    "symbol",
    "direction",
    "status",
    "entry_time",
    "entry_price",
    "quantity",
    "exit_time",
    "exit_price",
    "exit_reason",
    "realized_pnl",
    "realized_pnl_pct",
    "fees",
    "r_multiple",
]


def trades_csv_rows(qs: QuerySet) -> Iterable[list[Any]]:
    """Header then one row per trade; values as text, no formatting lost."""
    yield TRADE_CSV_COLUMNS
    for t in qs.iterator(chunk_size=1000):
        yield [
            t.pk,
            t.strategy.name if t.strategy else "",
            t.stock.symbol,
            t.direction,
            t.status,
            t.entry_time.isoformat(),
            t.entry_price,
            t.quantity,
            t.exit_time.isoformat() if t.exit_time else "",
            t.exit_price if t.exit_price is not None else "",
            t.exit_reason,
            t.realized_pnl if t.realized_pnl is not None else "",
            t.realized_pnl_pct if t.realized_pnl_pct is not None else "",
            t.fees,
            t.r_multiple if t.r_multiple is not None else "",
        ]


@dataclass
class TimelineItem:
    time: datetime
    kind: str
    title: str
    detail: str = ""
    link: str = ""


@dataclass
class TradeStory:
    trade: Trade
    signal: TradeSignal | None
    orders: list[Order]
    timeline: list[TimelineItem] = field(default_factory=list)
    indicator_values: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    market_context: dict[str, Any] = field(default_factory=dict)
    events: list[StrategyEvent] = field(default_factory=list)


def trade_story(trade: Trade) -> TradeStory:
    """The whole story of one trade: why it was opened, what was sent, what filled."""
    signal = trade.signal
    orders = list(trade.orders.select_related("stock").prefetch_related("fills").order_by("created_at", "id"))
    context = trade.market_context or {}
    reasons = list(signal.reasons) if signal and signal.reasons else list(context.get("reasons") or [])
    indicators = dict(signal.indicator_values) if signal and signal.indicator_values else {}
    indicators = indicators or dict(context.get("indicators") or context.get("indicator_snapshot") or {})
    timeline: list[TimelineItem] = []
    if signal is not None:
        timeline.append(
            TimelineItem(
                signal.timestamp,
                "signal",
                f"Signal {signal.get_signal_type_display()} at {signal.price}",
                "; ".join(str(r) for r in signal.reasons or []),
            )
        )
    for order in orders:
        label = f"{order.get_purpose_display()} order {order.side} {order.quantity} {order.order_type}"
        if order.submitted_at:
            timeline.append(
                TimelineItem(order.submitted_at, "order", f"{label} submitted", order.client_order_id)
            )
        else:
            timeline.append(
                TimelineItem(order.created_at, "order", f"{label} created", order.client_order_id)
            )
        for fill in order.fills.all():
            timeline.append(
                TimelineItem(
                    fill.timestamp,
                    "fill",
                    f"Fill {fill.quantity} @ {fill.price}",
                    f"commission {fill.commission} · {fill.execution_id}",
                )
            )
        if order.cancelled_at:
            timeline.append(TimelineItem(order.cancelled_at, "cancel", f"{label} cancelled"))
        if order.status == "rejected":
            timeline.append(
                TimelineItem(order.updated_at, "reject", f"{label} rejected", order.reject_reason)
            )
    timeline.append(
        TimelineItem(
            trade.entry_time, "entry", f"Entered {trade.direction} {trade.quantity} @ {trade.entry_price}"
        )
    )
    if trade.exit_time:
        timeline.append(
            TimelineItem(
                trade.exit_time,
                "exit",
                f"Exited @ {trade.exit_price} ({trade.get_exit_reason_display() or 'closed'})",
                f"P&L {trade.realized_pnl}",
            )
        )
    timeline.sort(key=lambda item: item.time)
    window_end = trade.exit_time or timezone.now()
    related_events = list(
        StrategyEvent.objects.filter(
            strategy_id=trade.strategy_id,
            created_at__gte=trade.entry_time - timedelta(minutes=5),
            created_at__lte=window_end + timedelta(minutes=5),
        )
        .filter(Q(metadata__trade_id=trade.pk) | Q(metadata__symbol=trade.stock.symbol))
        .order_by("created_at")[:50]
    )
    return TradeStory(trade, signal, orders, timeline, indicators, reasons, context, related_events)
