"""A slow, obviously correct per-bar simulator: the documented fill rules, one step at a time.

It shares only the cost, sizing, stop-level and protection *formulas* with the compiled
loop (the same functions the paper broker uses); the event loop, the bookkeeping and the
order of operations are written out independently, in plain Python objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from execution.backtest.settings import STOP_TYPES, TARGET_TYPES, BacktestSettings
from execution.costs import commission_for, slipped_price
from execution.sizing import fit_to_cash, position_size
from execution.stops import stop_target


@dataclass
class Position:
    direction: int
    quantity: float
    entry_price: float
    entry_fee: float
    entry_bar: int
    signal_bar: int
    stop: float
    target: float


@dataclass
class Order:
    direction: int
    quantity: float
    atr: float
    signal_bar: int


@dataclass
class Trade:
    symbol: int
    direction: int
    signal_bar: int
    entry_bar: int
    exit_bar: int
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    reason: str


def nan(x: float) -> bool:
    return x != x


class Reference:
    def __init__(self, settings: BacktestSettings, n_symbols: int):
        self.s = settings
        self.cash = settings.initial_cash
        self.positions: dict[int, Position] = {}
        self.exit_orders: set[int] = set()
        self.entry_orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.equity: list[float] = []
        self.last_close = [math.nan] * n_symbols
        self.symbol_lock = [0] * n_symbols
        self.global_lock = 0
        self.stop_exit_bars: list[int] = []
        self.rejected = 0

    # costs and formulas shared with live trading
    def fee(self, qty: float, price: float) -> float:
        return commission_for(qty, price, *self.s.costs.as_args())

    def slip(self, price: float, is_buy: bool) -> float:
        return slipped_price(price, is_buy, self.s.costs.slippage_bps)

    def levels(self, direction: int, price: float, atr: float) -> tuple[float, float]:
        s = self.s
        return stop_target(
            direction,
            price,
            atr,
            STOP_TYPES[s.stop_type],
            s.stop_value,
            TARGET_TYPES[s.target_type],
            s.target_value,
        )

    def close_position(self, j: int, t: int, price: float, reason: str) -> None:
        p = self.positions.pop(j)
        fee = self.fee(p.quantity, price)
        if p.direction > 0:
            self.cash += p.quantity * price - fee  # sell what we hold
        else:
            self.cash -= p.quantity * price + fee  # buy back what we owe
        pnl = p.direction * p.quantity * (price - p.entry_price) - p.entry_fee - fee
        self.trades.append(
            Trade(j, p.direction, p.signal_bar, p.entry_bar, t, p.quantity, p.entry_price, price, pnl, reason)
        )
        if self.s.cooldown_bars > 0:
            self.symbol_lock[j] = max(self.symbol_lock[j], t + self.s.cooldown_bars)
        if reason == "stop_loss":
            self.stop_exit_bars.append(t)
            s = self.s
            if s.stoploss_guard_limit > 0 and s.stoploss_guard_window > 0:
                recent = [b for b in self.stop_exit_bars if t - s.stoploss_guard_window < b <= t]
                if len(recent) >= s.stoploss_guard_limit:
                    self.global_lock = max(self.global_lock, t + s.stoploss_guard_pause)

    def run(self, open_, high, low, close, atr, sig) -> None:
        n, m = len(close), len(close[0])
        s = self.s
        for t in range(n):
            # 1. the open: exit orders, then entry orders in symbol order
            for j in sorted(self.exit_orders):
                if nan(open_[t][j]):
                    continue
                self.exit_orders.discard(j)
                if j in self.positions:
                    p = self.positions[j]
                    self.close_position(j, t, self.slip(open_[t][j], is_buy=p.direction < 0), "signal")
            for j in sorted(self.entry_orders):
                if nan(open_[t][j]):
                    continue
                order = self.entry_orders.pop(j)
                price = self.slip(open_[t][j], is_buy=order.direction > 0)
                collateral = sum(
                    p.quantity * (open_[t][k] if not nan(open_[t][k]) else self.last_close[k])
                    for k, p in self.positions.items()
                    if p.direction < 0
                )
                qty = fit_to_cash(
                    order.quantity, price, self.cash - collateral, *s.costs.as_args(), s.fractional_shares
                )
                if qty <= 0:
                    self.rejected += 1
                    continue
                fee = self.fee(qty, price)
                self.cash += -order.direction * qty * price - fee
                stop, target = self.levels(order.direction, price, order.atr)
                self.positions[j] = Position(
                    order.direction, qty, price, fee, t, order.signal_bar, stop, target
                )
            # 2. during the bar: stop first, then target
            for j in sorted(self.positions):
                if nan(open_[t][j]):
                    continue
                p = self.positions[j]
                o, h, lo = open_[t][j], high[t][j], low[t][j]
                if p.direction > 0:
                    if not nan(p.stop) and lo <= p.stop:
                        self.close_position(j, t, self.slip(min(o, p.stop), is_buy=False), "stop_loss")
                    elif not nan(p.target) and h >= p.target:
                        self.close_position(j, t, max(o, p.target), "take_profit")
                else:
                    if not nan(p.stop) and h >= p.stop:
                        self.close_position(j, t, self.slip(max(o, p.stop), is_buy=True), "stop_loss")
                    elif not nan(p.target) and lo <= p.target:
                        self.close_position(j, t, min(o, p.target), "take_profit")
            # 3. the close: equity, drawdown protection, signals
            for j in range(m):
                if not nan(close[t][j]):
                    self.last_close[j] = close[t][j]
            equity = self.cash
            for j in range(m):
                if j in self.positions:
                    equity += self.positions[j].direction * self.positions[j].quantity * self.last_close[j]
            self.equity.append(equity)
            if s.max_drawdown > 0 and s.max_drawdown_window > 0:
                window = self.equity[max(0, t - s.max_drawdown_window + 1) :]
                if 1.0 - equity / max(window) >= s.max_drawdown:
                    self.global_lock = max(self.global_lock, t + s.max_drawdown_pause)
            for j in range(m):
                if nan(close[t][j]) or j not in self.positions:
                    continue
                flags = sig[t][j]
                p = self.positions[j]
                if (p.direction > 0 and flags & 2) or (p.direction < 0 and flags & 8):
                    self.exit_orders.add(j)
            held = [j for j in self.positions if j not in self.exit_orders]
            free = self.cash
            for j, p in self.positions.items():
                if j in self.exit_orders or p.direction < 0:
                    free += p.direction * p.quantity * self.last_close[j]
            open_slots = len(held) + len(self.entry_orders)
            for j in range(m):
                flags, c = sig[t][j], close[t][j]
                if nan(c):
                    continue
                direction = 1 if flags & 1 else (-1 if s.allow_short and flags & 4 else 0)
                if direction == 0 or j in self.entry_orders or j in held:
                    continue
                exiting = j in self.exit_orders
                if (
                    t < self.global_lock
                    or t < self.symbol_lock[j]
                    or (exiting and s.cooldown_bars > 0)
                    or open_slots >= s.max_open_positions
                ):
                    self.rejected += 1
                    continue
                stop, _ = self.levels(direction, c, atr[t][j])
                if s.stop_type != "none" and nan(stop):
                    self.rejected += 1
                    continue
                distance = abs(c - stop) if s.stop_type != "none" else 0.0
                qty = position_size(
                    {"fixed_fraction": 0, "fixed_risk": 1}[s.sizing_method],
                    equity,
                    free,
                    c,
                    distance,
                    s.position_fraction,
                    s.risk_per_trade,
                    s.fractional_shares,
                )
                if qty <= 0:
                    self.rejected += 1
                    continue
                self.entry_orders[j] = Order(direction, qty, atr[t][j], t)
                free -= qty * c
                open_slots += 1
        # the end: close what is open at the last close
        if self.positions:
            for j in sorted(self.positions):
                p = self.positions[j]
                self.close_position(
                    j, n - 1, self.slip(self.last_close[j], is_buy=p.direction < 0), "end_of_data"
                )
            self.equity[-1] = self.cash
