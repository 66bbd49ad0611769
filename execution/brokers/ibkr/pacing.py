"""IB's pacing limits for the bar feed, counted on the market clock.

From IB's "Historical Data Limitations"
(https://interactivebrokers.github.io/tws-api/historical_limitations.html): no more than
60 historical-data requests in any ten minutes, never the same request twice within 15
seconds, and at most 50 historical-data requests open at once; and the API as a whole
takes at most 50 messages a second (``IB.sendMessage`` pacing, code 100 when exceeded).
IB states the 60-in-10-minutes rule for bars of 30 seconds or less and "soft" limits above;
the feed keeps to it for every bar size, since a violation (code 162) drops the request
and repeated ones end the connection.

Time is the market clock's (:mod:`marketdata.clock`), so a test on a manual clock sees a
wait as the clock moving, and a simulated drill paces in simulated time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from datetime import datetime, timedelta

from marketdata import clock
from marketdata.feeds.base import FeedError

HISTORICAL_REQUESTS = 60
HISTORICAL_WINDOW = timedelta(minutes=10)
IDENTICAL_GAP = timedelta(seconds=15)
MESSAGES_PER_SECOND = 50
OPEN_HISTORICAL_REQUESTS = 50


class PacingRefused(FeedError):
    """The request would break IB's pacing unless the feed waited longer than it may."""


class Pacing:
    """Admits historical-data requests and messages within IB's limits (see the module)."""

    def __init__(
        self,
        requests: int = HISTORICAL_REQUESTS,
        window: timedelta = HISTORICAL_WINDOW,
        identical_gap: timedelta = IDENTICAL_GAP,
        messages_per_second: int = MESSAGES_PER_SECOND,
        max_wait: float = 15.0,
    ) -> None:
        self.requests = int(requests)
        self.window = window
        self.identical_gap = identical_gap
        self.messages_per_second = int(messages_per_second)
        self.max_wait = float(max_wait)  # clock seconds a request may wait for its turn
        self._sent: deque[datetime] = deque()
        self._last_of: dict[Hashable, datetime] = {}
        self._messages: deque[datetime] = deque()

    def _forget(self, at: datetime) -> None:
        while self._sent and at - self._sent[0] >= self.window:
            self._sent.popleft()
        while self._messages and at - self._messages[0] >= timedelta(seconds=1):
            self._messages.popleft()
        stale = [key for key, sent in self._last_of.items() if at - sent >= self.identical_gap]
        for key in stale:
            del self._last_of[key]

    def request_delay(self, key: Hashable) -> float:
        """Clock seconds until a historical-data request ``key`` may go out (0: now)."""
        at = clock.now()
        self._forget(at)
        waits = [0.0]
        if len(self._sent) >= self.requests:
            waits.append((self._sent[len(self._sent) - self.requests] + self.window - at).total_seconds())
        if key in self._last_of:
            waits.append((self._last_of[key] + self.identical_gap - at).total_seconds())
        return max(waits)

    def admit_request(self, key: Hashable, what: str) -> None:
        """Wait (on the clock) for ``key``'s turn and count it, or raise :class:`PacingRefused`
        when its turn is more than ``max_wait`` away."""
        delay = self.request_delay(key)
        if delay > self.max_wait:
            used = len(self._sent)
            raise PacingRefused(
                f"IB pacing: {what} must wait {delay:.0f}s ({used} of {self.requests} historical-data "
                f"requests in the last {self.window.total_seconds() / 60:g} minutes, or the same "
                f"request within {self.identical_gap.total_seconds():g}s); asking again later"
            )
        if delay > 0:
            clock.current().sleep(delay)
        self.admit_message()
        at = clock.now()
        self._sent.append(at)
        self._last_of[key] = at

    def admit_message(self) -> None:
        """Wait until one more message fits in the last second's budget, then count it."""
        at = clock.now()
        self._forget(at)
        if len(self._messages) >= self.messages_per_second:
            wait = (self._messages[0] + timedelta(seconds=1) - at).total_seconds()
            clock.current().sleep(max(wait, 0.0))
            self._forget(clock.now())
        self._messages.append(clock.now())

    @property
    def used(self) -> int:
        """Historical-data requests counted in the current window."""
        self._forget(clock.now())
        return len(self._sent)
