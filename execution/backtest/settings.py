"""Backtest settings: a strategy's risk profile as the backtester's compiled loop reads it.

The profile itself (cash, costs, sizing, stops, position limit, protections; its
validation and its construction from a Strategy row) is ``strategies.risk_profile``:
plain data that strategies owns. This adds only the loop's parameter vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from execution.backtest import engine as e
from execution.costs import COMMISSION_MODELS
from execution.sizing import SIZING_METHODS
from execution.stops import STOP_TYPES, TARGET_TYPES
from strategies.risk_profile import RiskProfile, SettingsError

__all__ = ["BacktestSettings", "SettingsError"]


@dataclass(frozen=True)
class BacktestSettings(RiskProfile):
    """A :class:`~strategies.risk_profile.RiskProfile` handed to the backtester."""

    def as_array(self) -> np.ndarray:
        """The float64 parameter vector the numba loop reads (indices in ``engine.P_*``)."""
        p = np.zeros(e.P_SIZE, dtype=np.float64)
        p[e.P_CASH] = self.initial_cash
        p[e.P_COMMISSION_MODEL] = COMMISSION_MODELS[self.costs.commission]
        p[e.P_PER_SHARE] = self.costs.per_share
        p[e.P_MINIMUM] = self.costs.minimum
        p[e.P_MAXIMUM_PCT] = self.costs.maximum_pct
        p[e.P_PERCENT] = self.costs.percent
        p[e.P_SLIPPAGE_BPS] = self.costs.slippage_bps
        p[e.P_SIZING] = SIZING_METHODS[self.sizing_method]
        p[e.P_FRACTION] = self.position_fraction
        p[e.P_RISK_FRACTION] = self.risk_per_trade
        p[e.P_FRACTIONAL] = 1.0 if self.fractional_shares else 0.0
        p[e.P_STOP_TYPE] = STOP_TYPES[self.stop_type]
        p[e.P_STOP_VALUE] = self.stop_value
        p[e.P_TARGET_TYPE] = TARGET_TYPES[self.target_type]
        p[e.P_TARGET_VALUE] = self.target_value
        p[e.P_MAX_POSITIONS] = self.max_open_positions
        p[e.P_ALLOW_SHORT] = 1.0 if self.allow_short else 0.0
        p[e.P_COOLDOWN] = self.cooldown_bars
        p[e.P_SL_LIMIT] = self.stoploss_guard_limit
        p[e.P_SL_WINDOW] = self.stoploss_guard_window
        p[e.P_SL_PAUSE] = self.stoploss_guard_pause
        p[e.P_DD_MAX] = self.max_drawdown
        p[e.P_DD_WINDOW] = self.max_drawdown_window
        p[e.P_DD_PAUSE] = self.max_drawdown_pause
        return p
