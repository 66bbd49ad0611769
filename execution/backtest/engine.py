"""The compiled simulation loop.

Input: 2-D float64 arrays (bars x symbols) of open/high/low/close and ATR, one int8 array
of signal flags, and the parameter vector of :meth:`BacktestSettings.as_array`. Output:
the equity curve, an in-market flag per bar, and one row per trade. Missing bars of a
symbol (portfolio on a union index) are NaN and skipped; its orders wait for its next bar.

The rules, bar ``t`` by bar ``t`` (docs/strategies.md, "Fill rules", says the same):

1. at the open: pending exits fill (market, slipped open), then pending entries in symbol
   order (market, slipped open; quantity cut to the cash by ``fit_to_cash``; stop and
   target from the fill price and the signal bar's ATR);
2. during the bar: stop-loss then take-profit against the low/high; an open beyond the
   stop fills at the open; stops are market orders (slipped), targets limit orders (not);
3. at the close: equity = cash + positions at the close; the drawdown protection; then the
   bar's signals: exits first, then entries, checked against protections and the
   position limit and sized on this close's equity. They fill at the next bar's open.

The fill model and the cash rule (:mod:`execution.fills`), costs, sizing, stop levels
and protections are the shared compiled functions, the paper broker's too.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from execution.costs import commission_for
from execution.fills import ORDER_LIMIT, ORDER_MARKET, ORDER_STOP, fill_price, free_cash_change
from execution.protection_rules import (
    cooldown_until,
    drawdown_triggered,
    is_locked,
    pause_until,
    stop_streak_triggered,
)
from execution.sizing import fit_to_cash, position_size
from execution.stops import STOP_NONE, stop_target

# signal flags
ENTRY_LONG = np.int8(1)
EXIT_LONG = np.int8(2)
ENTRY_SHORT = np.int8(4)
EXIT_SHORT = np.int8(8)

# exit reasons
REASON_SIGNAL, REASON_STOP, REASON_TARGET, REASON_END = 0, 1, 2, 3
REASONS = ("signal", "stop_loss", "take_profit", "end_of_data")

# trade row columns
(
    T_SYMBOL,
    T_DIRECTION,
    T_SIGNAL_BAR,
    T_ENTRY_BAR,
    T_EXIT_BAR,
    T_QUANTITY,
    T_ENTRY_PRICE,
    T_EXIT_PRICE,
    T_ENTRY_FEE,
    T_EXIT_FEE,
    T_PNL,
    T_REASON,
    T_STOP,
    T_TARGET,
) = range(14)
T_SIZE = 14

# parameter vector indices
(
    P_CASH,
    P_COMMISSION_MODEL,
    P_PER_SHARE,
    P_MINIMUM,
    P_MAXIMUM_PCT,
    P_PERCENT,
    P_SLIPPAGE_BPS,
    P_SIZING,
    P_FRACTION,
    P_RISK_FRACTION,
    P_FRACTIONAL,
    P_STOP_TYPE,
    P_STOP_VALUE,
    P_TARGET_TYPE,
    P_TARGET_VALUE,
    P_MAX_POSITIONS,
    P_ALLOW_SHORT,
    P_COOLDOWN,
    P_SL_LIMIT,
    P_SL_WINDOW,
    P_SL_PAUSE,
    P_DD_MAX,
    P_DD_WINDOW,
    P_DD_PAUSE,
) = range(24)
P_SIZE = 24

# summary vector indices
S_TRADES, S_REJECTED, S_CASH = 0, 1, 2


@njit(cache=True)
def _close_trade(
    j,
    t,
    price,
    reason,
    cash,
    n_trades,
    n_open,
    costs,
    cooldown,
    pos,
    entry_price,
    entry_fee,
    entry_bar,
    signal_bar,
    stops,
    targets,
    symbol_lock,
    trades,
):
    """Close symbol ``j``'s position with a fill at ``price`` on bar ``t``: its commission
    and cash, its trade row, and the symbol's cooldown. Returns (cash, trades, open)."""
    cmodel, per_share, minimum, maximum_pct, percent = costs
    q = pos[j]
    fee = commission_for(abs(q), price, cmodel, per_share, minimum, maximum_pct, percent)
    cash += q * price - fee
    direction = 1.0 if q > 0 else -1.0
    qty = abs(q)
    pnl = direction * qty * (price - entry_price[j]) - entry_fee[j] - fee
    row = trades[n_trades]
    row[T_SYMBOL] = j
    row[T_DIRECTION] = direction
    row[T_SIGNAL_BAR] = signal_bar[j]
    row[T_ENTRY_BAR] = entry_bar[j]
    row[T_EXIT_BAR] = t
    row[T_QUANTITY] = qty
    row[T_ENTRY_PRICE] = entry_price[j]
    row[T_EXIT_PRICE] = price
    row[T_ENTRY_FEE] = entry_fee[j]
    row[T_EXIT_FEE] = fee
    row[T_PNL] = pnl
    row[T_REASON] = reason
    row[T_STOP] = stops[j]
    row[T_TARGET] = targets[j]
    pos[j] = 0.0
    symbol_lock[j] = max(symbol_lock[j], cooldown_until(t, cooldown))
    return cash, n_trades + 1, n_open - 1


@njit(cache=True)
def simulate(open_, high, low, close, atr, sig, p, trades, equity, in_market, summary):  # noqa: C901
    n, m = close.shape
    cash = p[P_CASH]
    cmodel = int(p[P_COMMISSION_MODEL])
    per_share, minimum, maximum_pct, percent = p[P_PER_SHARE], p[P_MINIMUM], p[P_MAXIMUM_PCT], p[P_PERCENT]
    bps = p[P_SLIPPAGE_BPS]
    sizing = int(p[P_SIZING])
    fraction, risk_fraction = p[P_FRACTION], p[P_RISK_FRACTION]
    fractional = p[P_FRACTIONAL] > 0.5
    stop_type, stop_value = int(p[P_STOP_TYPE]), p[P_STOP_VALUE]
    target_type, target_value = int(p[P_TARGET_TYPE]), p[P_TARGET_VALUE]
    max_positions = int(p[P_MAX_POSITIONS])
    allow_short = p[P_ALLOW_SHORT] > 0.5
    cooldown = int(p[P_COOLDOWN])
    sl_limit, sl_window, sl_pause = int(p[P_SL_LIMIT]), int(p[P_SL_WINDOW]), int(p[P_SL_PAUSE])
    dd_max, dd_window, dd_pause = p[P_DD_MAX], int(p[P_DD_WINDOW]), int(p[P_DD_PAUSE])

    pos = np.zeros(m)
    entry_price = np.zeros(m)
    entry_fee = np.zeros(m)
    entry_bar = np.zeros(m, np.int64)
    signal_bar = np.zeros(m, np.int64)
    stops = np.full(m, np.nan)
    targets = np.full(m, np.nan)
    last_close = np.full(m, np.nan)
    pend_exit = np.zeros(m, np.bool_)
    pend_dir = np.zeros(m, np.int64)
    pend_qty = np.zeros(m)
    pend_atr = np.full(m, np.nan)
    pend_bar = np.zeros(m, np.int64)
    symbol_lock = np.zeros(m, np.int64)
    stop_bars = np.zeros(trades.shape[0] + 1, np.int64)
    n_stops = 0
    global_lock = 0
    n_trades = 0
    rejected = 0
    n_open = 0
    n_pending = 0  # entry orders waiting for their fill
    costs = (cmodel, per_share, minimum, maximum_pct, percent)
    # the per-symbol arrays a trade's close reads and clears
    book = (pos, entry_price, entry_fee, entry_bar, signal_bar, stops, targets, symbol_lock)
    nan = math.nan

    for t in range(n):
        if n_open > 0 or n_pending > 0:
            # --- 1. the open: exits first, then entries ----------------------------------
            for j in range(m):
                o = open_[t, j]
                if not pend_exit[j] or math.isnan(o):
                    continue
                pend_exit[j] = False
                if pos[j] == 0.0:
                    continue
                price = fill_price(ORDER_MARKET, pos[j] < 0.0, o, high[t, j], low[t, j], nan, nan, bps)
                cash, n_trades, n_open = _close_trade(
                    j, t, price, REASON_SIGNAL, cash, n_trades, n_open, costs, cooldown, *book, trades
                )
            for j in range(m):
                d = pend_dir[j]
                o = open_[t, j]
                if d == 0 or math.isnan(o):
                    continue
                pend_dir[j] = 0
                n_pending -= 1
                price = fill_price(ORDER_MARKET, d > 0, o, high[t, j], low[t, j], nan, nan, bps)
                stop, target = stop_target(
                    d, price, pend_atr[j], stop_type, stop_value, target_type, target_value
                )
                # the cash rule: cash held against open shorts is not free to spend
                free = cash
                for k in range(m):
                    if pos[k] != 0.0:
                        ref = open_[t, k] if not math.isnan(open_[t, k]) else last_close[k]
                        free += free_cash_change(pos[k], ref, False)
                qty = fit_to_cash(
                    pend_qty[j], price, free, cmodel, per_share, minimum, maximum_pct, percent, fractional
                )
                if qty <= 0.0:
                    rejected += 1
                    continue
                fee = commission_for(qty, price, cmodel, per_share, minimum, maximum_pct, percent)
                cash -= d * qty * price + fee
                pos[j] = d * qty
                entry_price[j] = price
                entry_fee[j] = fee
                entry_bar[j] = t
                signal_bar[j] = pend_bar[j]
                stops[j] = stop
                targets[j] = target
                n_open += 1

            # --- 2. during the bar: stop first, then target --------------------------------
            for j in range(m):
                if pos[j] == 0.0 or math.isnan(open_[t, j]):
                    continue
                o, h, lo = open_[t, j], high[t, j], low[t, j]
                exit_buys = pos[j] < 0.0
                reason = REASON_STOP
                price = fill_price(ORDER_STOP, exit_buys, o, h, lo, stops[j], nan, bps)
                if math.isnan(price):
                    reason = REASON_TARGET
                    price = fill_price(ORDER_LIMIT, exit_buys, o, h, lo, nan, targets[j], bps)
                if math.isnan(price):
                    continue
                cash, n_trades, n_open = _close_trade(
                    j, t, price, reason, cash, n_trades, n_open, costs, cooldown, *book, trades
                )
                if reason == REASON_STOP:
                    stop_bars[n_stops] = t
                    n_stops += 1
                    if stop_streak_triggered(stop_bars, n_stops, t, sl_window, sl_limit):
                        global_lock = max(global_lock, pause_until(t, sl_pause))

        # --- 3. the close: equity, then this bar's signals ---------------------------------
        value = cash
        for j in range(m):
            c = close[t, j]
            if not math.isnan(c):
                last_close[j] = c
            if pos[j] != 0.0:
                value += pos[j] * last_close[j]
        equity[t] = value
        in_market[t] = n_open > 0
        if dd_max > 0.0 and drawdown_triggered(equity, t, dd_window, dd_max):
            global_lock = max(global_lock, pause_until(t, dd_pause))

        any_entry = False
        for j in range(m):
            s = sig[t, j]
            if s == 0 or math.isnan(close[t, j]):
                continue
            if (pos[j] > 0.0 and s & EXIT_LONG) or (pos[j] < 0.0 and s & EXIT_SHORT):
                pend_exit[j] = True
            if s & ENTRY_LONG or (allow_short and s & ENTRY_SHORT):
                any_entry = True
        if not any_entry:
            continue

        # Sizing sees this close's equity, and the cash free after the pending exits (valued
        # at this close) less the cash held against the shorts that stay open.
        free = cash
        holding = 0
        for j in range(m):
            if pos[j] == 0.0:
                continue
            free += free_cash_change(pos[j], last_close[j], pend_exit[j])
            if not pend_exit[j]:
                holding += 1
        for j in range(m):
            holding += 1 if pend_dir[j] != 0 else 0
        for j in range(m):
            s = sig[t, j]
            c = close[t, j]
            if s == 0 or math.isnan(c):
                continue
            d = 0
            if s & ENTRY_LONG:
                d = 1
            elif allow_short and s & ENTRY_SHORT:
                d = -1
            if d == 0 or pend_dir[j] != 0 or (pos[j] != 0.0 and not pend_exit[j]):
                continue  # nothing to enter, or already in (or entering) a position
            if (
                is_locked(t, global_lock)
                or is_locked(t, symbol_lock[j])
                or (pend_exit[j] and cooldown > 0)
                or holding >= max_positions
            ):
                rejected += 1
                continue
            stop, _ = stop_target(d, c, atr[t, j], stop_type, stop_value, target_type, target_value)
            if stop_type != STOP_NONE and math.isnan(stop):
                rejected += 1  # the stop it asks for cannot be computed yet (ATR warm-up)
                continue
            distance = abs(c - stop) if stop_type != STOP_NONE else 0.0
            qty = position_size(sizing, value, free, c, distance, fraction, risk_fraction, fractional)
            if qty <= 0.0:
                rejected += 1
                continue
            pend_dir[j] = d
            pend_qty[j] = qty
            pend_atr[j] = atr[t, j]
            pend_bar[j] = t
            n_pending += 1
            free -= qty * c
            holding += 1

    # --- the end: close what is still open at the last close ---------------------------------
    if n > 0 and n_open > 0:
        t = n - 1
        for j in range(m):
            if pos[j] == 0.0:
                continue
            c = last_close[j]
            price = fill_price(ORDER_MARKET, pos[j] < 0.0, c, c, c, nan, nan, bps)
            cash, n_trades, n_open = _close_trade(
                j, t, price, REASON_END, cash, n_trades, n_open, costs, cooldown, *book, trades
            )
        equity[t] = cash
    summary[S_TRADES] = n_trades
    summary[S_REJECTED] = rejected
    summary[S_CASH] = cash


def run_arrays(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    sig: np.ndarray,
    params: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
    """Run the loop on 2-D arrays; returns (trades, equity, in_market, rejected, final cash)."""
    n, m = close.shape
    max_trades = int(np.count_nonzero(sig & (ENTRY_LONG | ENTRY_SHORT))) + 1
    trades = np.empty((max_trades, T_SIZE), dtype=np.float64)
    equity = np.empty(n, dtype=np.float64)
    in_market = np.zeros(n, dtype=np.bool_)
    summary = np.zeros(3, dtype=np.float64)
    simulate(open_, high, low, close, atr, sig, params, trades, equity, in_market, summary)
    return (
        trades[: int(summary[S_TRADES])],
        equity,
        in_market,
        int(summary[S_REJECTED]),
        float(summary[S_CASH]),
    )
