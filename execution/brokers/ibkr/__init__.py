"""Interactive Brokers (TWS or IB Gateway) behind the broker interface, through ib_insync.

Split along the seams nautilus_trader's IB adapter uses:

- :mod:`.errors`   IB's message codes and the policy for each (and the words for a failed connect);
- :mod:`.mapping`  IB's objects to ours and back: orders, contracts, statuses, fills, account;
- :mod:`.tracking` our orders at IB across reconnects, and the executions handed out;
- :mod:`.events`   the library's events as ours, queued for ``poll_events``;
- :mod:`.session`  the API connection, its failures, reconnect with backoff;
- :mod:`.broker`   :class:`IBKRBroker`, the :mod:`execution.brokers.base` interface over them.

None of these imports ib_insync: :mod:`execution.brokers.ib_compat` is the only module
that does (a test checks it), so swapping in ib_async stays a one-line change.
"""

from execution.brokers.ibkr.broker import IBKRBroker, NoticeSink, record_notice
from execution.brokers.ibkr.mapping import map_status

__all__ = ["IBKRBroker", "NoticeSink", "map_status", "record_notice"]
