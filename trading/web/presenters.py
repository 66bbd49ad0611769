"""Presenters: domain objects and rows turned into what the pages and the JSON API show.

Pure functions, no queries: the selectors in ``trading.web.selectors`` read, these shape.
The same dicts feed a page's first render and the resync endpoints, so a page that
reloads after a gap in the live feed gets exactly the state it would have had.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from execution.models import BacktestRun, BacktestStatus, Order, Trade
from execution.selectors import Position
from strategies.models import Strategy, StrategyEvent, TradeSignal

ZERO = Decimal("0")


def epoch(ts: datetime) -> int:
    """Seconds since the epoch, what the chart library wants for its time axis."""
    return int(ts.timestamp())


def finite_float(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


# --- positions, strategies, signals, events, orders -------------------------------------------


def position_strategy(position: Position) -> str:
    """The strategy's name, or "manual" for a trade no strategy opened."""
    strategy = position.trade.strategy
    return strategy.name if strategy else "manual"


def position_dict(position: Position) -> dict[str, Any]:
    """One open position as the overview and the positions API show it."""
    trade = position.trade
    return {
        "trade_id": trade.pk,
        "strategy_id": position.strategy_id,
        "strategy": position_strategy(position),
        "symbol": position.symbol,
        "direction": position.direction,
        "quantity": str(position.quantity),
        "entry_price": str(position.entry_price),
        "entry_time": trade.entry_time.isoformat(),
        "last_price": _text(position.last_price),
        "unrealized_pnl": _text(position.unrealized_pnl),
        "stop_loss": _text(trade.stop_loss),
        "take_profit": _text(trade.take_profit),
    }


def strategy_state(strategy: Strategy) -> str:
    if strategy.kill_switch:
        return "killed"
    return "active" if strategy.active else "inactive"


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
        "avg_fill_price": _text(order.avg_fill_price),
        "created_at": order.created_at.isoformat(),
    }


# --- charts -------------------------------------------------------------------------------


def trade_markers(trades: Iterable[Trade], first_time: int | None) -> list[dict[str, Any]]:
    """Entry and exit arrows for the chart, only inside the visible window."""
    markers = []
    for t in trades:
        long = t.direction == "long"
        entry = epoch(t.entry_time)
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
        if t.exit_time and (first_time is None or epoch(t.exit_time) >= first_time):
            won = (t.realized_pnl or ZERO) > 0
            markers.append(
                {
                    "time": epoch(t.exit_time),
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


# --- equity curves ------------------------------------------------------------------------


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
        number = finite_float(value)
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
        return epoch(stamp)
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return epoch(parsed)
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


# --- backtests ----------------------------------------------------------------------------


def backtest_chart(run: BacktestRun) -> list[dict[str, float]]:
    return with_drawdown(equity_points(run.equity_curve))


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
