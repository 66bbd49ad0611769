"""Performance metrics from an equity curve and closed trades (formulas: docs/strategies.md).

Ratios are fractions (0.12 = 12 %); money is in account currency; durations are in bars.
A metric that is undefined (no trades, zero volatility...) is ``None``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from execution.backtest import engine

# Bars per year: 252 sessions; intraday bars over a 6.5-hour regular session.
_PERIODS = {
    "1min": 252 * 390,
    "5min": 252 * 78,
    "15min": 252 * 26,
    "30min": 252 * 13,
    "45min": 252 * 390 / 45,
    "1h": 252 * 6.5,
    "2h": 252 * 3.25,
    "4h": 252 * 1.625,
    "1day": 252,
    "1week": 52,
    "1month": 12,
}


def periods_per_year(timeframe: str) -> float:
    """Bars per year used to annualise returns, volatility and ratios."""
    try:
        return float(_PERIODS[timeframe])
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}") from None


def _none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in ``mask``."""
    if not mask.any():
        return 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max())


def drawdown_series(equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """``equity / running peak - 1`` (<= 0), the running peak starting at the initial cash."""
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    return equity / peak - 1.0


def buy_and_hold(closes: np.ndarray) -> float | None:
    """Equal-weight buy-and-hold return: mean over symbols of last close / first close - 1."""
    if closes.ndim == 1:
        closes = closes.reshape(-1, 1)
    returns = []
    for j in range(closes.shape[1]):
        column = closes[:, j]
        valid = column[~np.isnan(column)]
        if len(valid) >= 1 and valid[0] > 0:
            returns.append(valid[-1] / valid[0] - 1.0)
    return float(np.mean(returns)) if returns else None


@njit(cache=True)
def equity_stats(equity: np.ndarray, initial_cash: float) -> tuple[float, float, float, float, int]:
    """One pass over the equity curve: (mean return, sample stdev of returns, downside
    deviation, max drawdown (<= 0), longest run of bars below the running peak)."""
    n = len(equity)
    previous = initial_cash
    total = 0.0
    for i in range(n):
        total += equity[i] / previous - 1.0
        previous = equity[i]
    mean = total / n if n else np.nan
    previous = initial_cash
    squares = 0.0
    down = 0.0
    peak = initial_cash
    max_dd = 0.0
    run = 0
    longest = 0
    for i in range(n):
        r = equity[i] / previous - 1.0
        previous = equity[i]
        squares += (r - mean) ** 2
        if r < 0.0:
            down += r * r
        if equity[i] > peak:
            peak = equity[i]
        dd = equity[i] / peak - 1.0
        if dd < 0.0:
            run += 1
            if run > longest:
                longest = run
            if dd < max_dd:
                max_dd = dd
        else:
            run = 0
    std = np.sqrt(squares / (n - 1)) if n > 1 else np.nan
    downside = np.sqrt(down / n) if n else np.nan
    return mean, std, downside, max_dd, longest


def equity_metrics(equity: np.ndarray, initial_cash: float, periods: float) -> dict[str, Any]:
    n = len(equity)
    final = float(equity[-1]) if n else initial_cash
    total_return = final / initial_cash - 1.0
    years = n / periods
    cagr = None
    if years > 0:
        cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0 else -1.0
    mean, std, downside, max_dd, duration = equity_stats(
        np.ascontiguousarray(equity, dtype=np.float64), initial_cash
    )
    return {
        "initial_equity": float(initial_cash),
        "final_equity": final,
        "total_return": total_return,
        "cagr": _none(cagr) if cagr is not None else None,
        "volatility": _none(std * math.sqrt(periods)),
        "sharpe": _none(mean / std * math.sqrt(periods)) if std > 0 else None,
        "sortino": _none(mean / downside * math.sqrt(periods)) if downside > 0 else None,
        "max_drawdown": float(max_dd),
        "max_drawdown_duration": int(duration),
        "calmar": _none(cagr / abs(max_dd)) if cagr is not None and max_dd < 0 else None,
    }


def _streaks(wins: np.ndarray) -> tuple[int, int]:
    return longest_run(wins), longest_run(~wins)


def trade_metrics(trades: np.ndarray) -> dict[str, Any]:
    pnl = trades[:, engine.T_PNL]
    n = len(pnl)
    notional = trades[:, engine.T_ENTRY_PRICE] * trades[:, engine.T_QUANTITY]
    returns = pnl / notional if n else np.zeros(0)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    longest_win, longest_loss = _streaks(pnl > 0) if n else (0, 0)
    pnl_std = float(pnl.std(ddof=1)) if n > 1 else 0.0
    return {
        "trades": n,
        "win_rate": len(wins) / n if n else None,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else None,
        "expectancy": float(pnl.mean()) if n else None,
        "expectancy_pct": float(returns.mean()) if n else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "best_trade": float(returns.max()) if n else None,
        "worst_trade": float(returns.min()) if n else None,
        "sqn": math.sqrt(n) * float(pnl.mean()) / pnl_std if pnl_std > 0 else None,
        "longest_win_streak": longest_win,
        "longest_loss_streak": longest_loss,
        "fees": float(trades[:, engine.T_ENTRY_FEE].sum() + trades[:, engine.T_EXIT_FEE].sum()),
        "gross_profit": gross_win,
        "gross_loss": -gross_loss,
    }


def compute_metrics(
    equity: np.ndarray,
    trades: np.ndarray,
    in_market: np.ndarray,
    closes: np.ndarray,
    *,
    initial_cash: float,
    periods: float,
    rejected: int = 0,
    index: pd.DatetimeIndex | None = None,
) -> dict[str, Any]:
    """Every metric of a backtest, as a JSON-ready dict."""
    metrics: dict[str, Any] = {}
    if index is not None and len(index):
        metrics["start"] = index[0].isoformat()
        metrics["end"] = index[-1].isoformat()
    metrics["bars"] = len(equity)
    metrics.update(equity_metrics(equity, initial_cash, periods))
    metrics.update(trade_metrics(trades))
    metrics["exposure"] = float(in_market.mean()) if len(in_market) else 0.0
    metrics["rejected_signals"] = int(rejected)
    metrics["buy_and_hold"] = buy_and_hold(closes)
    return metrics
