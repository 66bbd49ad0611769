"""Interactive Brokers as the live bar feed (``MARKETDATA_PROVIDER=ibkr``).

One ``reqHistoricalData(keepUpToDate=True)`` subscription per contract and IB bar size
(TRADES, regular hours, UTC dates): IB sends the bar in progress again and again (the
library updates the list's last bar in place) and starts a new one when its period begins
(``updateEvent(bars, hasNewBar=True)``). A bar is closed, and only then delivered, when the
next bar has started or its session's close has passed on the market clock
(:func:`marketdata.clock.now`, never the wall clock), so the session's last bar, early
closes included, is complete at the close although IB starts no next bar. A range older
than what a subscription holds (after a restart or an outage) is backfilled with one plain
``reqHistoricalData``. Every request passes :class:`~.pacing.Pacing` (IB's limits).

**Its own connection.** The feed connects as its own API client (its own client id), not
through the broker's, as nautilus_trader's adapter keeps a separate data client: IB paces
historical data per client (a pacing violation, 162, and repeated ones end with a
disconnect), so a burst of backfills must never stall or drop the connection the engine's
orders, fills and cancels use; and a data client never sees or touches orders. It reuses
the broker's :class:`~.session.Session` for connect, one-line connect failures and
reconnect with backoff; after a reconnect (or 1101, "data lost") it subscribes again.

Errors on a request (162, 200, 354 ...) make that symbol's bars missing with IB's reason
(policy in :mod:`.errors`); a lost connection (socket down, or 1100) is a
:class:`~marketdata.feeds.base.FeedError` with one line, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from execution.brokers import ib_compat as ibc
from execution.brokers.base import BrokerUnavailable, ConnectionEvent, UnknownContract
from execution.brokers.ibkr import errors, mapping
from execution.brokers.ibkr.bars import (
    bar_key,
    bar_row,
    bar_size,
    build,
    duration,
    frame_of,
    source_timeframe,
)
from execution.brokers.ibkr.pacing import OPEN_HISTORICAL_REQUESTS, Pacing, PacingRefused
from execution.brokers.ibkr.session import Session
from marketdata.bartime import EXCHANGE_TZ, bar_end, session_close
from marketdata.clock import now
from marketdata.feeds.base import BarFeed, FeedCapacityError, FeedError, FeedResult, wanted_times
from marketdata.sessions import BarClose, previous_bar_close

logger = logging.getLogger(__name__)

#: A subscription starts this far back at least, so that it never comes back empty
#: (ib_insync drops the updates of a subscription whose list is empty).
SUBSCRIBE_BACK = {"intraday": pd.Timedelta(days=2), "1day": pd.Timedelta(days=10)}
KEEP = pd.Timedelta(days=7)  # closed bars kept before the oldest bar asked for
IO_STEP = 0.05  # seconds of one I/O wait while bars settle


class _ConnectionLog:
    """The session's queue for the feed: connection changes are logged, nothing else."""

    def push(self, event: ConnectionEvent) -> None:
        level = logging.INFO if event.connected else logging.WARNING
        logger.log(level, "IB bar feed: %s", "connected" if event.connected else event.message)


@dataclass
class Series:
    """One contract's bars of one IB bar size: the closed ones, and the live subscription."""

    symbol: str
    timeframe: str  # of IB's bars (see bars.source_timeframe)
    closed: dict[pd.Timestamp, tuple[float, ...]] = field(default_factory=dict)
    bars: Any = None  # the subscription's BarDataList, None when not subscribed
    covered_from: pd.Timestamp | None = None  # bars from here on are held or subscribed
    failure: str | None = None  # why the last request failed
    retry: bool = True  # whether asking again can help

    def on_update(self, bars: Any, has_new_bar: bool) -> None:
        """The library's ``updateEvent``: a new bar started, so the one before it is closed."""
        if has_new_bar and len(bars) >= 2:
            self.closed[bar_key(bars[-2].date)] = bar_row(bars[-2])

    def forming(self) -> tuple[pd.Timestamp, tuple[float, ...]] | None:
        if not self.bars:
            return None
        return bar_key(self.bars[-1].date), bar_row(self.bars[-1])


def session_end(key: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """When the session of the bar keyed ``key`` closes (its bar's end outside sessions)."""
    if timeframe == "1day":
        return bar_end(key, timeframe)
    return session_close(key.tz_convert(EXCHANGE_TZ)) or bar_end(key, timeframe)


class IBBarFeed(BarFeed):
    name = "ibkr"
    adjustment = "none"  # TRADES bars: prices as traded

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        ib: Any = None,
        exchanges: Mapping[str, str] | None = None,
        currency: str = "USD",
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        reconnect_delays: Iterable[float] = (1, 2, 5, 10, 30, 60),
        pacing: Pacing | None = None,
        settle: float = 5.0,
        max_subscriptions: int = OPEN_HISTORICAL_REQUESTS,
    ) -> None:
        self._ib = ib if ib is not None else ibc.IB()
        self._ib.RequestTimeout = float(request_timeout)
        self._session = Session(
            self._ib,
            host,
            port,
            client_id,
            "",
            connect_timeout,
            reconnect_delays,
            _ConnectionLog(),  # type: ignore[arg-type]  # only push() is used
            on_reconnect=lambda: (0, 0),
        )
        self.exchanges = {k.upper(): v for k, v in (exchanges or {}).items()}
        self.currency = currency
        self.pacing = pacing or Pacing()
        # At most this long (I/O) for IB to start the bar after the one that just closed:
        # IB refreshes a subscription about every five seconds ("the most recent partial
        # five-second bar"), so the next bar shows up within about five seconds of its start.
        self.settle = float(settle)
        self.max_subscriptions = int(max_subscriptions)
        self._series: dict[tuple[str, str], Series] = {}
        self._contracts: dict[str, Any] = {}
        self._unknown: dict[str, str] = {}
        self._request_errors: list[tuple[int, int, str]] | None = None
        self._ib.errorEvent += self._on_error
        self._ib.disconnectedEvent += self._on_disconnected

    def __repr__(self) -> str:
        return f"<IBBarFeed {self._session.where} client {self._session.client_id}>"

    # --- capacity -------------------------------------------------------------------------

    def check_capacity(self, universe: Mapping[str, Sequence[str]]) -> None:
        """One subscription per symbol and IB bar size stays open all session: refuse a
        universe that needs more than IB allows open at once (50, IB's "Historical Data
        Limitations"); 1h, 2h and 4h share the 30-minute bars."""
        for timeframe in universe:
            try:
                source_timeframe(timeframe)
            except FeedError as exc:
                raise FeedCapacityError(str(exc)) from None
        needed = {(s.upper(), source_timeframe(tf)) for tf, symbols in universe.items() for s in symbols}
        if len(needed) > self.max_subscriptions:
            shape = ", ".join(f"{len(s)} symbols x {tf}" for tf, s in sorted(universe.items()))
            raise FeedCapacityError(
                f"IB: {shape} needs {len(needed)} keepUpToDate subscriptions (one per symbol and bar "
                f"size), but IB allows {self.max_subscriptions} historical-data requests open at once"
            )

    # --- connection -----------------------------------------------------------------------

    def connect(self) -> None:
        """Connect now (else the first request does), or :class:`FeedError` with one line."""
        try:
            self._session.connect()
        except BrokerUnavailable as exc:
            raise FeedError(f"IB bar feed: {exc}") from None

    def close(self) -> None:
        for series in self._series.values():
            if series.bars is not None and self._session.socket_up:
                self._ib.cancelHistoricalData(series.bars)
            series.bars = None
        self._session.disconnect()

    def _ready(self) -> None:
        if not self._session.want_connection:
            self.connect()
        elif not self._session.ensure_connected():
            if self._session.socket_up:
                raise FeedError("IB bar feed: TWS/Gateway has lost its connection to IB (1100); bars paused")
            raise FeedError(
                f"IB bar feed: not connected to IB at {self._session.where} "
                f"(client {self._session.client_id}); reconnecting"
            )

    def _on_disconnected(self) -> None:
        # The library forgets its subscriptions with the socket: subscribe again when back.
        for series in self._series.values():
            series.bars = None

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        if self._request_errors is not None:
            self._request_errors.append((req_id, code, message))
        if code == errors.CONNECTIVITY_RESTORED_DATA_LOST:
            self._on_disconnected()
            return
        for series in self._series.values():
            if series.bars is not None and series.bars.reqId == req_id:
                failure = errors.data_failure(code, message)
                if failure is not None:  # the subscription is dead: subscribe again later
                    series.failure, series.retry = failure
                    series.bars = None
                    logger.warning("IB bar feed, %s %s: %s", series.symbol, series.timeframe, failure[0])

    # --- requests -------------------------------------------------------------------------

    def _request(self, call: Any, what: str) -> tuple[Any, tuple[str, bool] | None]:
        """A blocking request, and the failure IB reported for it (if any)."""
        self._request_errors = []
        try:
            answer = self._session.request(call, what)
        except BrokerUnavailable as exc:
            raise FeedError(f"IB bar feed: {exc}") from None
        finally:
            seen, self._request_errors = self._request_errors, None
        req_id = getattr(answer, "reqId", None)
        for rid, code, message in seen:
            failure = errors.data_failure(code, message)
            if failure is not None and (req_id is None or rid in (req_id, -1)):
                return answer, failure
        return answer, None

    def _contract(self, symbol: str) -> Any:
        key = mapping.contract_key(symbol, self.exchanges.get(symbol.upper(), ""), self.currency)
        if symbol not in self._contracts:
            self.pacing.admit_message()
            details, _failure = self._request(
                lambda: self._ib.reqContractDetails(mapping.stock_query(key)), f"the contract for {symbol}"
            )
            self._contracts[symbol] = mapping.stock_contract(key, list(details))
        return self._contracts[symbol]

    def _series_for(self, symbol: str, timeframe: str) -> Series:
        return self._series.setdefault((symbol, timeframe), Series(symbol, timeframe))

    def _historical(self, series: Series, end: pd.Timestamp | None, span: pd.Timedelta) -> tuple[Any, Any]:
        """One ``reqHistoricalData`` for ``series`` through pacing: the subscription
        (``end`` None, keepUpToDate) or the plain request ending at ``end``."""
        contract = self._contract(series.symbol)
        size, length = bar_size(series.timeframe), duration(span, series.timeframe)
        what = f"the {size} bars of {series.symbol}" + (f" before {end.isoformat()}" if end else "")
        self.pacing.admit_request((series.symbol, size, end, length), what)
        return self._request(
            lambda: self._ib.reqHistoricalData(
                contract,
                endDateTime="" if end is None else end.to_pydatetime(),
                durationStr=length,
                barSizeSetting=size,
                whatToShow="TRADES",
                useRTH=True,
                formatDate=2,
                keepUpToDate=end is None,
            ),
            what,
        )

    def _subscribe(self, series: Series, start: pd.Timestamp) -> None:
        live = sum(1 for s in self._series.values() if s.bars is not None)
        if live >= self.max_subscriptions:
            raise PacingRefused(f"IB allows {self.max_subscriptions} historical-data requests open at once")
        back = SUBSCRIBE_BACK["1day" if series.timeframe == "1day" else "intraday"]
        bars, failure = self._historical(series, None, max(pd.Timestamp(now()) - start, back))
        if failure is None and not len(bars):
            failure = (f"IB sent no {bars.barSizeSetting} bars for {series.symbol}; asking again later", True)
        if failure is not None:
            series.failure, series.retry = failure
            self._ib.cancelHistoricalData(bars)
            return
        series.failure = None
        for bar in bars[:-1]:
            series.closed[bar_key(bar.date)] = bar_row(bar)
        bars.updateEvent += series.on_update
        series.bars = bars
        first = bar_key(bars[0].date)
        series.covered_from = min(start, first, series.covered_from or first)

    def _backfill(self, series: Series, start: pd.Timestamp) -> None:
        """The bars from ``start`` up to what the series already covers, in one request."""
        end = series.covered_from
        assert end is not None
        bars, failure = self._historical(series, end, end - start)
        if failure is not None:
            series.failure, series.retry = failure
            return
        for bar in bars:
            key = bar_key(bar.date)
            if key < end:  # older than what the series holds: long closed
                series.closed[key] = bar_row(bar)
        series.covered_from = start

    def _prepare(self, series: Series, start: pd.Timestamp) -> None:
        """Subscribe, and backfill what lies before the subscription, as needed."""
        if series.symbol in self._unknown:
            return
        if series.bars is None and (series.retry or series.failure is None):
            self._subscribe(series, start)
        if series.bars is not None and series.covered_from is not None and start < series.covered_from:
            self._backfill(series, start)

    # --- closed bars ----------------------------------------------------------------------

    def _is_closed(self, series: Series, key: pd.Timestamp, clock_now: pd.Timestamp) -> bool:
        if key in series.closed:
            return True
        forming = series.forming()
        return forming is not None and forming[0] == key and session_end(key, series.timeframe) <= clock_now

    def _closed_frame(self, series: Series, since: pd.Timestamp, clock_now: pd.Timestamp) -> pd.DataFrame:
        rows = {k: v for k, v in series.closed.items() if k >= since}
        forming = series.forming()
        if forming is not None and forming[0] >= since and self._is_closed(series, forming[0], clock_now):
            rows[forming[0]] = forming[1]
        return frame_of(rows)

    def _settle(self, pending: list[tuple[Series, pd.Timestamp]]) -> None:
        """Process I/O (at most ``settle`` seconds) until IB has started the bar after each
        pending one: the bar that just closed is usually complete a moment after its end."""
        for _ in range(int(self.settle / IO_STEP)):
            clock_now = pd.Timestamp(now())
            if all(self._is_closed(s, key, clock_now) for s, key in pending if s.bars is not None):
                return
            self._ib.waitOnUpdate(timeout=IO_STEP)

    def _prune(self, series: Series, since: pd.Timestamp) -> None:
        keep_from = since - KEEP
        for key in [k for k in series.closed if k < keep_from]:
            del series.closed[key]
        if series.covered_from is not None and series.covered_from < keep_from:
            series.covered_from = keep_from

    def closed_bars(
        self, timeframe: str, symbols: Sequence[str], first_open: pd.Timestamp, last: BarClose
    ) -> FeedResult:
        source_tf = source_timeframe(timeframe)
        result = FeedResult()
        wanted = wanted_times(timeframe, first_open, last)
        if not symbols or wanted.empty:
            return result
        self._ready()
        self._ib.sleep(0)  # take in what IB sent since the last call
        last_source = previous_bar_close(last.closes_at, source_tf)
        newest = last_source.opens_at if last_source is not None else last.opens_at
        pending = []
        for symbol in symbols:
            series = self._series_for(symbol, source_tf)
            try:
                self._prepare(series, wanted[0])
            except PacingRefused as exc:
                result.missing[symbol] = str(exc)
                continue
            except UnknownContract as exc:  # none, or several: missing until someone fixes it
                self._unknown[symbol] = str(exc)
            pending.append((series, newest))
        if self.settle > 0:
            self._settle(pending)
        clock_now = pd.Timestamp(now())
        for series, _key in pending:
            symbol = series.symbol
            if symbol in self._unknown:
                result.missing[symbol] = self._unknown[symbol]
                continue
            source = self._closed_frame(series, wanted[0], clock_now)
            frame = build(source, source_tf, timeframe)
            frame = frame[frame.index.isin(wanted)]
            self._prune(series, wanted[0])
            if frame.empty:
                result.missing[symbol] = series.failure or (
                    f"the {timeframe} bar of {last.opens_at.isoformat()} has not completed at IB yet"
                )
            else:
                result.bars[symbol] = frame
        return result
