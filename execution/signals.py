"""What execution tells the layers above (Django signals; it imports none of them).

``trading`` broadcasts these to the pages after commit (its receivers are connected in
``TradingConfig.ready()``). Each is sent inside the transaction that made the change,
right after the write; senders are model classes (the receiver cache needs them).
The payloads pages receive are built by ``execution.presenters``.
"""

from django.dispatch import Signal

# sender=Order, order (stock loaded)
order_created = Signal(use_caching=True)
order_updated = Signal(use_caching=True)
# A new fill was applied to its order: sender=Fill, order, fill
fill_created = Signal(use_caching=True)
# sender=Trade, trade (stock loaded)
trade_opened = Signal(use_caching=True)
trade_updated = Signal(use_caching=True)
trade_closed = Signal(use_caching=True)
# The engine's command queue: sender=EngineCommand, command; finished also has result
# (the full text; command.result is cut to the column's length).
engine_command_requested = Signal(use_caching=True)
engine_command_finished = Signal(use_caching=True)
