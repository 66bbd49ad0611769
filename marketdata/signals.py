"""What marketdata tells the layers above (Django signals; it imports none of them).

``strategies`` journals these (connected in ``StrategiesConfig.ready()``).
"""

from django.dispatch import Signal

# A background fetch stored a symbol's bars: sender=Stock, stock, timeframe, result
# (marketdata.services.IngestResult).
bars_fetched = Signal()
# A background fetch failed: sender=Stock, stock, timeframe, error (the exception).
bars_fetch_failed = Signal()
