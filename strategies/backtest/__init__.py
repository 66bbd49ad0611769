"""The backtester: the strategy's signals over the whole history, then a compiled loop.

Public entry points: :func:`run_backtest`, :class:`BacktestSettings`,
:func:`strategies.backtest.stops.levels`.
"""

from strategies.backtest.runner import BacktestError, BacktestResult, run_backtest
from strategies.backtest.settings import BacktestSettings, SettingsError

__all__ = ["BacktestError", "BacktestResult", "BacktestSettings", "SettingsError", "run_backtest"]
