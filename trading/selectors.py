"""Reads behind the pages and the resync API: plain functions returning plain data.

Views stay thin: they parse the request, call one of these and render. Everything a page
shows first is also what the JSON endpoints return, so a page that resyncs after a gap in
the live feed gets exactly the state it would have had after a reload.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from execution.models import OPEN_ORDER_STATUSES, Order, Trade, TradeStatus
from execution.selectors import last_prices, marking_time
from marketdata.models import Bar, Stock
from strategies.models import BacktestRun, BacktestStatus, Strategy, StrategyEvent, TradeSignal

ZERO = Decimal("0")

# --- small helpers ---------------------------------------------------------------------------


def _epoch(ts: datetime) -> int:
    """Seconds since the epoch, what the chart library wants for its time axis."""
    return int(ts.timestamp())


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- positions and equity ----------------------------------------------------------------------


@dataclass
class Position:
    trade_id: int
    strategy_id: int | None
    strategy: str
    symbol: str
    direction: str
    quantity: Decimal
    entry_price: Decimal
    entry_time: datetime
    last_price: Decimal | None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.last_price is None:
            return None
        sign = 1 if self.direction == "long" else -1
        return (self.last_price - self.entry_price) * self.quantity * sign

    @property
    def market_value(self) -> Decimal:
        return (self.last_price or self.entry_price) * self.quantity

    def as_dict(self) -> dict[str, Any]:
        return {
            "trade_id": self.trade_id,
            "strategy_id": self.strategy_id,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "direction": self.direction,
            "quantity": str(self.quantity),
            "entry_price": str(self.entry_price),
            "entry_time": self.entry_time.isoformat(),
            "last_price": str(self.last_price) if self.last_price is not None else None,
            "unrealized_pnl": str(self.unrealized_pnl) if self.unrealized_pnl is not None else None,
            "stop_loss": str(self.stop_loss) if self.stop_loss is not None else None,
            "take_profit": str(self.take_profit) if self.take_profit is not None else None,
        }


def open_positions() -> list[Position]:
    """Open trades (net of partial exits) for the pages, marked as
    ``execution.selectors.open_positions`` marks them (the newest close the engine has seen).
    """
    from execution.trades import exited_quantity

    trades = list(
        Trade.objects.filter(status=TradeStatus.OPEN)
        .select_related("stock", "strategy")
        .order_by("entry_time")
    )
    prices = last_prices((t.stock_id for t in trades), as_of=marking_time())
    return [
        Position(
            trade_id=t.pk,
            strategy_id=t.strategy_id,
            strategy=t.strategy.name if t.strategy else "manual",
            symbol=t.stock.symbol,
            direction=t.direction,
            quantity=t.quantity - exited_quantity(t),
            entry_price=t.entry_price,
            entry_time=t.entry_time,
            last_price=prices.get(t.stock_id),
            stop_loss=t.stop_loss,
            take_profit=t.take_profit,
        )
        for t in trades
    ]


def starting_cash() -> Decimal:
    from execution import selectors as execution_selectors

    return execution_selectors.starting_cash()


@dataclass
class AccountSummary:
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    day_pnl: Decimal
    open_positions: int
    trades_today: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "equity": str(self.equity),
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
            "day_pnl": str(self.day_pnl),
            "open_positions": self.open_positions,
            "trades_today": self.trades_today,
        }


def account_summary(positions: list[Position] | None = None, now: datetime | None = None) -> AccountSummary:
    """Equity from execution.selectors.equity_now (cash + positions at their last price).

    Day P&L is equity now minus the last equity snapshot taken before midnight UTC; without
    such a snapshot (a fresh account) it is the realised P&L of trades closed today plus
    the unrealised P&L of positions opened today.
    """
    from execution.models import EquitySnapshot

    positions = open_positions() if positions is None else positions
    now = now or timezone.now()
    midnight = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    # execution.selectors.equity_now's formula: starting cash + realised P&L - fees of open
    # trades + unrealised P&L (computed here from the positions already marked).
    realized = Trade.objects.filter(status=TradeStatus.CLOSED).aggregate(p=Sum("realized_pnl"))["p"] or ZERO
    open_fees = Trade.objects.filter(status=TradeStatus.OPEN).aggregate(f=Sum("fees"))["f"] or ZERO
    unrealized = sum((p.unrealized_pnl or ZERO for p in positions), ZERO)
    equity = starting_cash() + realized - open_fees + unrealized
    before_today = EquitySnapshot.objects.filter(timestamp__lt=midnight).order_by("-timestamp").first()
    if before_today is not None:
        day_pnl = equity - before_today.equity
    else:
        closed_today = Trade.objects.filter(status=TradeStatus.CLOSED, exit_time__gte=midnight)
        realized_today = closed_today.aggregate(s=Sum("realized_pnl"))["s"] or ZERO
        opened_today = (p.unrealized_pnl or ZERO for p in positions if p.entry_time >= midnight)
        day_pnl = realized_today + sum(opened_today, ZERO)
    return AccountSummary(
        equity=equity,
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        day_pnl=day_pnl,
        open_positions=len(positions),
        trades_today=Trade.objects.filter(entry_time__gte=midnight).count(),
    )


def equity_history(limit: int = 2000) -> list[dict[str, Any]]:
    """The account's equity curve: the engine's snapshots when there are any, else the
    equity after each closed trade."""
    from execution import selectors as execution_selectors

    rows = execution_selectors.equity_curve(max_points=limit)
    if rows:
        return [{"time": _epoch(ts), "equity": float(value)} for ts, value in rows]
    return realized_equity_curve(limit)


def realized_equity_curve(limit: int = 2000) -> list[dict[str, Any]]:
    """Equity after each closed trade, oldest first (the live account's curve)."""
    rows = (
        Trade.objects.filter(status=TradeStatus.CLOSED, exit_time__isnull=False)
        .order_by("exit_time", "id")
        .values_list("exit_time", "realized_pnl")
    )
    equity = starting_cash()
    curve: list[dict[str, Any]] = []
    for exit_time, pnl in rows:
        equity += pnl or ZERO
        curve.append({"time": _epoch(exit_time), "equity": float(equity)})
    return curve[-limit:]


# --- strategies, signals, events --------------------------------------------------------------


def strategies_with_state() -> list[dict[str, Any]]:
    """Every strategy with its open trade count and last signal time (for the overview)."""
    from execution.models import Protection

    now = timezone.now()
    locks: dict[int | None, datetime] = {}
    for strategy_id, expires in Protection.objects.filter(expires_at__gt=now).values_list(
        "strategy_id", "expires_at"
    ):
        locks[strategy_id] = max(expires, locks.get(strategy_id, expires))
    rows = Strategy.objects.annotate(
        open_trades=Count("trades", filter=Q(trades__status=TradeStatus.OPEN), distinct=True),
        last_signal=Max("signals__timestamp"),
    ).order_by("-active", "name")
    return [
        {
            "id": s.pk,
            "name": s.name,
            "strategy_class": s.strategy_class,
            "timeframe": s.timeframe,
            "active": s.active,
            "kill_switch": s.kill_switch,
            "open_trades": s.open_trades,
            "last_signal": s.last_signal.isoformat() if s.last_signal else None,
            "state": strategy_state(s),
            "locked_until": (locks.get(s.pk) or locks.get(None)).isoformat()
            if (locks.get(s.pk) or locks.get(None))
            else None,
        }
        for s in rows
    ]


def strategy_state(strategy: Strategy) -> str:
    if strategy.kill_switch:
        return "killed"
    return "active" if strategy.active else "inactive"


def global_kill_switch() -> bool:
    """Whether the global kill switch is on (new entries refused everywhere)."""
    from execution import risk

    return risk.global_kill_switch()


def signal_dict(signal: TradeSignal) -> dict[str, Any]:
    return {
        "id": signal.pk,
        "strategy_id": signal.strategy_id,
        "strategy": signal.strategy.name,
        "symbol": signal.stock.symbol,
        "signal_type": signal.signal_type,
        "timestamp": signal.timestamp.isoformat(),
        "price": str(signal.price),
        "executed": signal.executed,
        "reasons": signal.reasons,
    }


def latest_signals(limit: int = 20, strategy: Strategy | None = None) -> list[TradeSignal]:
    qs = TradeSignal.objects.select_related("strategy", "stock").order_by("-created_at", "-id")
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    return list(qs[:limit])


def event_dict(event: StrategyEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "strategy_id": event.strategy_id,
        "strategy": event.strategy.name if event.strategy else None,
        "event_type": event.event_type,
        "severity": event.severity,
        "message": event.message,
        "metadata": event.metadata,
        "created_at": event.created_at.isoformat(),
    }


def latest_events(limit: int = 30, strategy: Strategy | None = None) -> list[StrategyEvent]:
    qs = StrategyEvent.objects.select_related("strategy")
    if strategy is not None:
        qs = qs.filter(strategy=strategy)
    return list(qs[:limit])


def events(severity: str = "", event_type: str = "", strategy_id: int | None = None) -> QuerySet:
    qs = StrategyEvent.objects.select_related("strategy")
    if severity:
        qs = qs.filter(severity=severity)
    if event_type:
        qs = qs.filter(event_type=event_type)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    return qs


def event_types() -> list[str]:
    return list(StrategyEvent.objects.order_by().values_list("event_type", flat=True).distinct()[:200])


def engine() -> dict[str, Any]:
    """The engine's heartbeat as /health reports it (running, state, seconds since beat)."""
    from trading.health import engine_status

    return engine_status()


def overview() -> dict[str, Any]:
    """Everything the overview page shows, as JSON-ready data."""
    positions = open_positions()
    return {
        "engine": engine(),
        "account": account_summary(positions).as_dict(),
        "positions": [p.as_dict() for p in positions],
        "strategies": strategies_with_state(),
        "kill_switch": global_kill_switch(),
        "signals": [signal_dict(s) for s in latest_signals(20)],
        "events": [event_dict(e) for e in latest_events(30)],
    }


# --- trades -------------------------------------------------------------------------------


@dataclass
class TradeFilters:
    strategy: int | None = None
    symbol: str = ""
    start: date | None = None
    end: date | None = None
    outcome: str = ""  # "", "win", "loss", "open"
    status: str = ""


def filtered_trades(filters: TradeFilters) -> QuerySet:
    qs = Trade.objects.select_related("strategy", "stock")
    if filters.strategy:
        qs = qs.filter(strategy_id=filters.strategy)
    if filters.symbol:
        qs = qs.filter(stock__symbol__iexact=filters.symbol)
    if filters.start:
        qs = qs.filter(entry_time__date__gte=filters.start)
    if filters.end:
        qs = qs.filter(entry_time__date__lte=filters.end)
    if filters.outcome == "win":
        qs = qs.filter(status=TradeStatus.CLOSED, realized_pnl__gt=0)
    elif filters.outcome == "loss":
        qs = qs.filter(status=TradeStatus.CLOSED, realized_pnl__lte=0)
    elif filters.outcome == "open":
        qs = qs.filter(status=TradeStatus.OPEN)
    return qs


def trade_totals(qs: QuerySet) -> dict[str, Any]:
    agg = qs.aggregate(
        count=Count("id"),
        closed=Count("id", filter=Q(status=TradeStatus.CLOSED)),
        wins=Count("id", filter=Q(status=TradeStatus.CLOSED, realized_pnl__gt=0)),
        pnl=Sum("realized_pnl"),
        fees=Sum("fees"),
        gross_win=Sum("realized_pnl", filter=Q(realized_pnl__gt=0)),
        gross_loss=Sum("realized_pnl", filter=Q(realized_pnl__lt=0)),
    )
    closed = agg["closed"] or 0
    wins = agg["wins"] or 0
    gross_loss = -(agg["gross_loss"] or ZERO)
    return {
        "count": agg["count"] or 0,
        "closed": closed,
        "open": (agg["count"] or 0) - closed,
        "wins": wins,
        "losses": closed - wins,
        "win_rate": (wins / closed) if closed else None,
        "pnl": agg["pnl"] or ZERO,
        "fees": agg["fees"] or ZERO,
        "profit_factor": (float((agg["gross_win"] or ZERO) / gross_loss) if gross_loss else None),
    }


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


def csv_text(rows: Iterable[list[Any]]) -> Iterable[str]:
    """Each row rendered as one CSV line (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)


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


# --- orders -------------------------------------------------------------------------------


def orders(status: str = "", strategy_id: int | None = None, symbol: str = "") -> QuerySet:
    qs = Order.objects.select_related("strategy", "stock", "trade")
    if status == "open":
        qs = qs.filter(status__in=OPEN_ORDER_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if symbol:
        qs = qs.filter(stock__symbol__iexact=symbol)
    return qs


def order_dict(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "strategy": order.strategy.name if order.strategy else None,
        "symbol": order.stock.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "purpose": order.purpose,
        "quantity": str(order.quantity),
        "status": order.status,
        "filled_quantity": str(order.filled_quantity),
        "avg_fill_price": str(order.avg_fill_price) if order.avg_fill_price is not None else None,
        "created_at": order.created_at.isoformat(),
    }


# --- charts -------------------------------------------------------------------------------


def default_timeframe(stock: Stock) -> str:
    """The timeframe with the most recent bar for this stock (daily if it has none)."""
    bar = Bar.objects.filter(stock=stock).order_by("-timestamp").only("timeframe").first()
    return bar.timeframe if bar else "1day"


def stock_timeframes(stock: Stock) -> list[str]:
    return sorted(Bar.objects.filter(stock=stock).order_by().values_list("timeframe", flat=True).distinct())


def candles(
    stock: Stock,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> Any:
    """The bars as a DataFrame (newest ``limit`` of the window), oldest first."""
    from marketdata.selectors import bars_frame

    frame = bars_frame(stock, timeframe, start, end)
    return frame.iloc[-limit:] if limit else frame


def chart_payload(
    stock: Stock,
    timeframe: str,
    indicator_names: Iterable[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    trades: Iterable[Trade] | None = None,
) -> dict[str, Any]:
    """Candles, indicator series and trade markers for the chart scripts.

    Indicators are computed over extra history before the window so that the first
    visible value is already warmed up.
    """
    from marketdata import indicators as catalogue

    specs = []
    for name in indicator_names:
        try:
            specs.append(catalogue.IndicatorSpec.of(name))
        except catalogue.IndicatorError:
            continue  # an unknown name in the query string is ignored, not a 500
    warmup = max((s.warmup for s in specs), default=0)
    frame = candles(stock, timeframe, start, end, limit=limit + warmup if limit else 0)
    if specs and len(frame):
        frame = catalogue.compute(frame, specs)
    frame = frame.iloc[-limit:] if limit else frame
    times = [_epoch(ts.to_pydatetime()) for ts in frame.index]
    bars = [
        {"time": t, "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in zip(
            times,
            frame["open"].tolist(),
            frame["high"].tolist(),
            frame["low"].tolist(),
            frame["close"].tolist(),
            frame["volume"].tolist(),
            strict=True,
        )
    ]
    series = []
    for spec in specs:
        definition = catalogue.get(spec.name)
        for column in spec.columns:
            if column.endswith(("_bandwidth", "_percent")):
                continue  # not in price units; a separate pane would be needed
            values = frame[column].tolist()
            points = [
                {"time": t, "value": v} for t, v in zip(times, values, strict=True) if _float(v) is not None
            ]
            series.append(
                {"name": column, "label": str(spec), "overlay": definition.overlay, "points": points}
            )
    markers = trade_markers(trades if trades is not None else [], times[0] if times else None)
    return {
        "symbol": stock.symbol,
        "timeframe": timeframe,
        "bars": bars,
        "series": series,
        "markers": markers,
    }


def trade_markers(trades: Iterable[Trade], first_time: int | None) -> list[dict[str, Any]]:
    """Entry and exit arrows for the chart, only inside the visible window."""
    markers = []
    for t in trades:
        long = t.direction == "long"
        entry = _epoch(t.entry_time)
        if first_time is None or entry >= first_time:
            markers.append(
                {
                    "time": entry,
                    "position": "belowBar" if long else "aboveBar",
                    "shape": "arrowUp" if long else "arrowDown",
                    "color": "#2563eb",
                    "text": f"{'Buy' if long else 'Short'} #{t.pk}",
                }
            )
        if t.exit_time and (first_time is None or _epoch(t.exit_time) >= first_time):
            won = (t.realized_pnl or ZERO) > 0
            markers.append(
                {
                    "time": _epoch(t.exit_time),
                    "position": "aboveBar" if long else "belowBar",
                    "shape": "arrowDown" if long else "arrowUp",
                    "color": "#16a34a" if won else "#dc2626",
                    "text": f"Exit #{t.pk}",
                }
            )
    markers.sort(key=lambda m: m["time"])
    if len(markers) > 24:  # labels would cover the candles; the arrows and colours remain
        for marker in markers:
            marker["text"] = ""
    return markers


def stock_trades_in_window(stock: Stock, start_time: int | None) -> list[Trade]:
    qs = Trade.objects.filter(stock=stock).select_related("strategy")
    if start_time is not None:
        qs = qs.filter(
            Q(exit_time__isnull=True) | Q(exit_time__gte=datetime.fromtimestamp(start_time, tz=UTC))
        )
    return list(qs.order_by("entry_time")[:500])


def trade_chart(trade: Trade, context_bars: int = 60) -> dict[str, Any]:
    """The chart around one trade: bars from before the entry to after the exit."""
    from marketdata.selectors import bars_frame

    timeframe = trade.strategy.timeframe if trade.strategy else default_timeframe(trade.stock)
    end = trade.exit_time or timezone.now()
    before = bars_frame(trade.stock, timeframe, None, trade.entry_time)
    start = before.index[-context_bars].to_pydatetime() if len(before) >= context_bars else None
    after = Bar.objects.filter(stock=trade.stock, timeframe=timeframe, timestamp__gt=end).order_by(
        "timestamp"
    )
    last_after = after.values_list("timestamp", flat=True)[context_bars // 3 : context_bars // 3 + 1]
    window_end = last_after[0] if last_after else None
    return chart_payload(trade.stock, timeframe, ["sma"], start, window_end, limit=0, trades=[trade])


# --- backtests ----------------------------------------------------------------------------


def equity_points(curve: Any) -> list[dict[str, float]]:
    """A backtest's equity curve as ``[{"time", "equity"}]`` whatever shape it was stored in.

    The backtester stores a list of ``[timestamp, equity]`` pairs or of dicts; timestamps
    may be ISO strings or epoch seconds/milliseconds.
    """
    points: list[dict[str, float]] = []
    if isinstance(curve, dict):  # {"timestamps": [...], "equity": [...]}
        stamps = curve.get("timestamps") or curve.get("time") or curve.get("index") or []
        values = curve.get("equity") or curve.get("values") or []
        curve = list(zip(stamps, values, strict=False))
    for item in curve or []:
        if isinstance(item, dict):
            stamp = item.get("time", item.get("timestamp", item.get("t", item.get("date"))))
            value = item.get("equity", item.get("value", item.get("v")))
        elif isinstance(item, list | tuple) and len(item) >= 2:
            stamp, value = item[0], item[1]
        else:
            continue
        seconds = _to_epoch(stamp)
        number = _float(value)
        if seconds is not None and number is not None:
            points.append({"time": seconds, "equity": number})
    points.sort(key=lambda p: p["time"])
    deduped: dict[int, dict[str, float]] = {int(p["time"]): p for p in points}
    return list(deduped.values())


def _to_epoch(stamp: Any) -> int | None:
    if isinstance(stamp, bool):
        return None
    if isinstance(stamp, int | float):
        return int(stamp / 1000) if stamp > 10**11 else int(stamp)
    if isinstance(stamp, datetime):
        return _epoch(stamp)
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return _epoch(parsed)
    return None


def with_drawdown(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """Each point gains ``drawdown``: the fall from the running peak, as a negative %."""
    peak = -math.inf
    out = []
    for p in points:
        peak = max(peak, p["equity"])
        drawdown = (p["equity"] / peak - 1.0) * 100 if peak > 0 else 0.0
        out.append({**p, "drawdown": round(drawdown, 4)})
    return out


def backtest_chart(run: BacktestRun) -> list[dict[str, float]]:
    return with_drawdown(equity_points(run.equity_curve))


def latest_backtest(strategy: Strategy) -> BacktestRun | None:
    return strategy.backtests.order_by("-created_at", "-id").first()


# (key in BacktestRun.metrics, label, kind): ratios are stored as fractions ("pct").
METRIC_LABELS = [
    ("total_return", "Total return", "pct"),
    ("buy_and_hold", "Buy & hold", "pct"),
    ("cagr", "CAGR", "pct"),
    ("volatility", "Volatility (ann.)", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("calmar", "Calmar", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration", "Max drawdown duration (bars)", "raw"),
    ("trades", "Trades", "raw"),
    ("num_trades", "Trades", "raw"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "num"),
    ("expectancy", "Expectancy", "num"),
    ("expectancy_pct", "Expectancy (%)", "pct"),
    ("avg_win", "Average win", "num"),
    ("avg_loss", "Average loss", "num"),
    ("best_trade", "Best trade", "pct"),
    ("worst_trade", "Worst trade", "pct"),
    ("longest_win_streak", "Longest winning streak", "raw"),
    ("longest_loss_streak", "Longest losing streak", "raw"),
    ("sqn", "SQN", "num"),
    ("exposure", "Exposure", "pct"),
    ("fees", "Fees", "num"),
    ("rejected_signals", "Signals rejected by risk", "raw"),
    ("initial_equity", "Initial equity", "num"),
    ("final_equity", "Final equity", "num"),
    ("bars", "Bars", "raw"),
    ("start", "Start", "raw"),
    ("end", "End", "raw"),
]


def metric_rows(runs: list[BacktestRun]) -> list[dict[str, Any]]:
    """Rows for a side-by-side table: known metrics first, then any others they report."""
    known = [key for key, _, _ in METRIC_LABELS]
    extra = sorted({k for r in runs for k in (r.metrics or {}) if k not in known})
    labels = {key: (label, kind) for key, label, kind in METRIC_LABELS}
    rows = []
    for key in known + extra:
        values = [(r.metrics or {}).get(key) for r in runs]
        if all(v is None for v in values):
            continue
        label, kind = labels.get(key, (key.replace("_", " ").capitalize(), "num"))
        rows.append({"key": key, "label": label, "kind": kind, "values": values})
    return rows


def backtests(strategy_id: int | None = None, status: str = "") -> QuerySet:
    qs = BacktestRun.objects.select_related("strategy").defer("equity_curve", "trades")
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def backtests_by_ids(ids: Iterable[int]) -> list[BacktestRun]:
    wanted = list(dict.fromkeys(ids))[:6]
    found = {r.pk: r for r in BacktestRun.objects.filter(pk__in=wanted).select_related("strategy")}
    return [found[i] for i in wanted if i in found]


def backtest_dict(run: BacktestRun, with_curve: bool = False) -> dict[str, Any]:
    data = {
        "id": run.pk,
        "strategy_id": run.strategy_id,
        "strategy_class": run.strategy_class,
        "status": run.status,
        "done": run.status in (BacktestStatus.DONE, BacktestStatus.FAILED),
        "metrics": run.metrics,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if with_curve:
        data["equity"] = backtest_chart(run)
    return data
