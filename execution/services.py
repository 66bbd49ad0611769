"""The order pipeline's public names, in one place, for the live engine.

The code lives in three modules along its seams: :mod:`execution.order_lifecycle`
(intent -> Order row -> broker), :mod:`execution.broker_reports` (what the broker says
back) and :mod:`execution.exits` (protective orders, closing a trade). Everything else
imports those; ``trading.engine`` still calls ``services.<name>`` while its own split is
under way, and this module goes when it imports the three directly.
"""

from execution.broker_reports import EventApplier
from execution.exits import after_events
from execution.order_lifecycle import resolve_unknown

__all__ = ["EventApplier", "after_events", "resolve_unknown"]
