"""Plain-text reports of backtest results: the metrics table and a trade list."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:,.2f} %"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def metrics_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) in the order a trader reads them."""
    m = metrics
    return [
        ("Period", f"{m.get('start', '?')[:10]} -> {m.get('end', '?')[:10]} ({m.get('bars', 0):,} bars)"),
        ("Start equity", _num(m.get("initial_equity"))),
        ("Final equity", _num(m.get("final_equity"))),
        ("Total return", _pct(m.get("total_return"))),
        ("CAGR", _pct(m.get("cagr"))),
        ("Buy & hold return", _pct(m.get("buy_and_hold"))),
        ("Volatility (ann.)", _pct(m.get("volatility"))),
        ("Sharpe ratio", _num(m.get("sharpe"))),
        ("Sortino ratio", _num(m.get("sortino"))),
        ("Calmar ratio", _num(m.get("calmar"))),
        ("Max drawdown", _pct(m.get("max_drawdown"))),
        ("Max drawdown duration", f"{m.get('max_drawdown_duration', 0):,} bars"),
        ("Exposure", _pct(m.get("exposure"))),
        ("Trades", f"{m.get('trades', 0):,}"),
        ("Win rate", _pct(m.get("win_rate"))),
        ("Profit factor", _num(m.get("profit_factor"))),
        ("Expectancy", f"{_num(m.get('expectancy'))} ({_pct(m.get('expectancy_pct'))})"),
        ("Avg win / avg loss", f"{_num(m.get('avg_win'))} / {_num(m.get('avg_loss'))}"),
        ("Best / worst trade", f"{_pct(m.get('best_trade'))} / {_pct(m.get('worst_trade'))}"),
        ("SQN", _num(m.get("sqn"))),
        (
            "Longest win / loss streak",
            f"{m.get('longest_win_streak', 0)} / {m.get('longest_loss_streak', 0)}",
        ),
        ("Fees", _num(m.get("fees"))),
        ("Signals rejected by risk", f"{m.get('rejected_signals', 0):,}"),
    ]


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = metrics_rows(metrics)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:>28}" for label, value in rows)


def trades_table(trades: pd.DataFrame, limit: int = 20) -> str:
    """The last ``limit`` trades as a fixed-width table."""
    if trades.empty:
        return "no trades"
    shown = trades.tail(limit)
    lines = [
        f"{'symbol':<8} {'side':<5} {'entry time':<16} {'entry':>11} {'exit time':<16} {'exit':>11} "
        f"{'qty':>10} {'P&L':>12} {'ret %':>7}  reason"
    ]
    for t in shown.itertuples(index=False):
        lines.append(
            f"{t.symbol:<8} {t.direction:<5} {t.entry_time:%Y-%m-%d %H:%M} {t.entry_price:>11.4f} "
            f"{t.exit_time:%Y-%m-%d %H:%M} {t.exit_price:>11.4f} {t.quantity:>10g} {t.pnl:>12,.2f} "
            f"{t.return_pct:>7.2f}  {t.exit_reason}"
        )
    if len(trades) > limit:
        lines.append(f"... {len(trades) - limit} earlier trades not shown")
    return "\n".join(lines)
