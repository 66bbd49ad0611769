"""The backtester, simulated execution: the strategy's signals over the whole history,
then a compiled loop that fills by the paper broker's fill model (``execution.fills``).

Public entry points: :func:`run_backtest`, :class:`BacktestSettings`; stop levels are
:func:`execution.stops.levels` (shared with live trading).
"""

from execution.backtest.runner import BacktestError, BacktestResult, run_backtest
from execution.backtest.settings import BacktestSettings, SettingsError

__all__ = ["BacktestError", "BacktestResult", "BacktestSettings", "SettingsError", "run_backtest"]
