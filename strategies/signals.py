"""What strategies tells the layers above (Django signals; it imports none of them).

``trading`` broadcasts these to the pages after commit (its receivers are connected in
``TradingConfig.ready()``). Each is sent inside the transaction that made the change,
once the row is written; senders are model classes (the receiver cache needs them).
"""

from django.dispatch import Signal

# A journal row was written (or its batch was): sender=StrategyEvent, event.
event_recorded = Signal(use_caching=True)
# A new TradeSignal was stored: sender=TradeSignal, trade_signal (stock loaded).
trade_signal_created = Signal(use_caching=True)
