"""What the backtester tells the layers above (a Django signal; it imports none of them).

``trading`` broadcasts it to the pages after commit (its receiver is connected in
``TradingConfig.ready()``).
"""

from django.dispatch import Signal

# A stored backtest run finished with its results: sender=BacktestRun, run.
backtest_finished = Signal(use_caching=True)
