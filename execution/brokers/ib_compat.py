"""The one module that imports the Interactive Brokers client library.

Everything the IBKR broker, its bar feed, their fakes and the command need is re-exported from here, so
moving from ``ib_insync`` to its maintained fork ``ib_async`` (the same API under another
name) is the one-line change marked below. Nothing else in the project imports either
(``execution/tests/ibkr/test_isolation.py`` fails if something does).
"""

from __future__ import annotations

import asyncio

import ib_insync as ib_lib  # <- the one line: `import ib_async as ib_lib`

LIBRARY_NAME: str = ib_lib.__name__

IB = ib_lib.IB
Event = ib_lib.Event
Contract = ib_lib.Contract
ContractDetails = ib_lib.ContractDetails
Stock = ib_lib.Stock
Order = ib_lib.Order
MarketOrder = ib_lib.MarketOrder
LimitOrder = ib_lib.LimitOrder
StopOrder = ib_lib.StopOrder
StopLimitOrder = ib_lib.StopLimitOrder
OrderState = ib_lib.OrderState
OrderStatus = ib_lib.OrderStatus
Trade = ib_lib.Trade
TradeLogEntry = ib_lib.TradeLogEntry
Fill = ib_lib.Fill
Execution = ib_lib.Execution
ExecutionFilter = ib_lib.ExecutionFilter
CommissionReport = ib_lib.CommissionReport
Position = ib_lib.Position
AccountValue = ib_lib.AccountValue
BarData = ib_lib.BarData
BarDataList = ib_lib.BarDataList

__all__ = [
    "LIBRARY_NAME",
    "IB",
    "Event",
    "Contract",
    "ContractDetails",
    "Stock",
    "Order",
    "MarketOrder",
    "LimitOrder",
    "StopOrder",
    "StopLimitOrder",
    "OrderState",
    "OrderStatus",
    "Trade",
    "TradeLogEntry",
    "Fill",
    "Execution",
    "ExecutionFilter",
    "CommissionReport",
    "Position",
    "AccountValue",
    "BarData",
    "BarDataList",
    "ensure_event_loop",
]


def ensure_event_loop() -> asyncio.AbstractEventLoop:
    """Give this thread a usable asyncio loop before the library's blocking calls need one.

    The library runs its socket on the thread's event loop (``get_event_loop``); a thread
    other than the main one has none, and test runners may leave a closed one behind.
    """
    policy = asyncio.get_event_loop_policy()
    try:
        loop = policy.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop
