"""Protections as small pure rules, shared by the backtester (compiled) and the live engine.

The backtester calls these inside its numba loop; the live engine calls the same functions
(they also run as plain Python through numba's dispatcher) before it writes a database
lock. Time is counted in bars of the strategy's timeframe: bar ``t`` is the bar whose
close produced the entry signal being checked.

Rules (see docs/strategies.md, "Protections"):

- **Cooldown**: after a position in a symbol is closed by a fill on bar ``e``, entry
  signals for that symbol on bars ``e .. e + cooldown - 1`` are rejected
  (:func:`cooldown_until`, :func:`is_locked`).
- **Stop-loss guard**: when a stop-loss exit fills on bar ``e`` and at least ``limit``
  stop-loss exits of the strategy (any symbol) filled on bars ``e - window + 1 .. e``,
  every entry of the strategy is rejected on bars ``e .. e + pause - 1``
  (:func:`stop_streak_triggered`, :func:`pause_until`).
- **Max drawdown**: at each bar close ``t``, when the equity has fallen by at least
  ``max_drawdown`` (a fraction) from its highest close over bars ``t - window + 1 .. t``,
  every entry is rejected on bars ``t .. t + pause - 1`` (:func:`drawdown_triggered`).

A lock is the bar index *until* which (exclusive) entries are rejected; 0 means none.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def is_locked(now: int, locked_until: int) -> bool:
    """True when an entry signalled on bar ``now`` is blocked by a lock ending at ``locked_until``."""
    return now < locked_until


@njit(cache=True)
def pause_until(now: int, pause_bars: int) -> int:
    """The lock that rejects entries on bars ``now .. now + pause_bars - 1``."""
    return now + pause_bars


@njit(cache=True)
def cooldown_until(exit_bar: int, cooldown_bars: int) -> int:
    """The per-symbol lock after an exit filled on ``exit_bar`` (no lock when cooldown is 0)."""
    if cooldown_bars <= 0:
        return 0
    return exit_bar + cooldown_bars


@njit(cache=True)
def count_in_window(event_bars: np.ndarray, count: int, now: int, window: int) -> int:
    """How many of the first ``count`` entries of ``event_bars`` lie in ``now - window + 1 .. now``."""
    found = 0
    for i in range(count - 1, -1, -1):
        bar = event_bars[i]
        if bar > now:
            continue
        if bar <= now - window:
            # event_bars is in time order: everything before is older still
            break
        found += 1
    return found


@njit(cache=True)
def stop_streak_triggered(stop_bars: np.ndarray, count: int, now: int, window: int, limit: int) -> bool:
    """The stop-loss guard: ``limit`` or more stop-loss exits within the last ``window`` bars."""
    if limit <= 0 or window <= 0:
        return False
    return count_in_window(stop_bars, count, now, window) >= limit


@njit(cache=True)
def window_drawdown(equity: np.ndarray, now: int, window: int) -> float:
    """Fall of ``equity[now]`` from the highest equity in bars ``now - window + 1 .. now``,
    as a fraction (0.1 = 10 % below that peak)."""
    start = now - window + 1
    if start < 0:
        start = 0
    peak = equity[now]
    for i in range(start, now):
        if equity[i] > peak:
            peak = equity[i]
    if peak <= 0.0:
        return 0.0
    return 1.0 - equity[now] / peak


@njit(cache=True)
def drawdown_triggered(equity: np.ndarray, now: int, window: int, max_drawdown: float) -> bool:
    """The max-drawdown protection: the window drawdown reached ``max_drawdown``."""
    if max_drawdown <= 0.0 or window <= 0:
        return False
    return window_drawdown(equity, now, window) >= max_drawdown
