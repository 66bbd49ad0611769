"""The fake IB with historical bars: ``reqHistoricalData`` (plain and keepUpToDate) and the
bar updates of ib_insync, for the bar feed's tests.

What it follows (ib_insync 0.9.86, ``IB.reqHistoricalDataAsync`` and
``Wrapper.historicalDataUpdate``):

- the answer is a real ``BarDataList`` carrying the request's parameters and ``reqId``;
  with ``keepUpToDate`` it stays subscribed until ``cancelHistoricalData`` or a disconnect;
- an update for the bar in progress replaces the list's last bar and emits
  ``updateEvent(bars, False)`` (nothing when it equals the last bar); an update for a later
  bar appends it and emits ``updateEvent(bars, True)``; an older one is dropped, and so is
  every update of a list that is still empty (``if not bars: return``);
- an error on the request is ``errorEvent(reqId, code, message, contract)`` during the
  request, which then returns the (empty) list, as with ``RaiseRequestErrors=False``.

The test drives "the exchange" on the market clock: ``add_bars`` (history IB already has),
``push_bar`` (a new bar starts), ``tick`` (the bar in progress trades again), and
``bar_errors`` (symbol -> (code, message) answered to every request for that symbol).
Updates go on the wire and arrive at the next I/O, as the other messages of the fake do.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from execution.brokers import ib_compat as ibc
from execution.tests.fake_ib import FakeIB
from marketdata import clock

_UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}


def _when(value: date | datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def parse_duration(text: str) -> timedelta:
    amount, unit = text.split()
    return timedelta(seconds=int(amount) * _UNITS[unit])


class FakeIBWithBars(FakeIB):
    """:class:`FakeIB` plus historical bars (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.tape: dict[tuple[str, str], list[Any]] = {}  # (symbol, bar size) -> IB's bars
        self.bar_errors: dict[str, tuple[int, str]] = {}
        self.history_requests: list[dict[str, Any]] = []
        super().__init__(*args, **kwargs)

    def _reset_client(self) -> None:
        super()._reset_client()
        self._bar_subscribers: dict[int, Any] = {}  # the library forgets them with the socket

    @property
    def subscriptions(self) -> int:
        return len(self._bar_subscribers)

    # --- the client's requests ------------------------------------------------------------

    def reqHistoricalData(
        self,
        contract: Any,
        endDateTime: Any,
        durationStr: str,
        barSizeSetting: str,
        whatToShow: str,
        useRTH: bool,
        formatDate: int = 1,
        keepUpToDate: bool = False,
        chartOptions: list | None = None,
        timeout: float = 60,
    ) -> Any:
        self._request("reqHistoricalData")
        req_id = self.client.getReqId()
        bars = ibc.BarDataList()
        bars.reqId = req_id
        bars.contract = contract
        bars.endDateTime = endDateTime
        bars.durationStr = durationStr
        bars.barSizeSetting = barSizeSetting
        bars.whatToShow = whatToShow
        bars.useRTH = useRTH
        bars.formatDate = formatDate
        bars.keepUpToDate = keepUpToDate
        bars.chartOptions = chartOptions or []
        self.history_requests.append(
            {
                "symbol": contract.symbol,
                "endDateTime": endDateTime,
                "durationStr": durationStr,
                "barSizeSetting": barSizeSetting,
                "whatToShow": whatToShow,
                "useRTH": useRTH,
                "formatDate": formatDate,
                "keepUpToDate": keepUpToDate,
            }
        )
        if keepUpToDate:  # ib_insync subscribes before it sends the request
            self._bar_subscribers[req_id] = bars
        error = self.bar_errors.get(contract.symbol)
        if error is not None:
            self.errorEvent.emit(req_id, error[0], error[1], contract)
            return bars
        end = _when(clock.now()) if endDateTime in ("", None) else _when(endDateTime)
        start = end - parse_duration(durationStr)
        for bar in self.tape.get((contract.symbol, barSizeSetting), []):
            if start <= _when(bar.date) and (_when(bar.date) < end or endDateTime in ("", None)):
                bars.append(copy.copy(bar))
        return bars

    def cancelHistoricalData(self, bars: Any) -> None:
        self._count("cancelHistoricalData")
        self._bar_subscribers.pop(bars.reqId, None)

    def _historical_update(self, req_id: int, bar: Any) -> None:
        """ib_insync's ``Wrapper.historicalDataUpdate``, line for line."""
        bars = self._bar_subscribers.get(req_id)
        if not bars:
            return
        last_date = bars[-1].date
        if bar.date < last_date:
            return
        has_new_bar = len(bars) == 0 or bar.date > last_date
        if has_new_bar:
            bars.append(bar)
        elif bars[-1] != bar:
            bars[-1] = bar
        else:
            return
        self.barUpdateEvent.emit(bars, has_new_bar)
        bars.updateEvent.emit(bars, has_new_bar)

    def _publish(self, symbol: str, bar_size: str, bar: Any, delay: int = 0) -> None:
        for req_id, bars in list(self._bar_subscribers.items()):
            if bars.contract.symbol == symbol and bars.barSizeSetting == bar_size:
                update = copy.copy(bar)
                self._send(
                    lambda req_id=req_id, update=update: self._historical_update(req_id, update), delay
                )

    # --- "the exchange" (test actions) ----------------------------------------------------

    def add_bars(self, symbol: str, bar_size: str, rows: list[tuple]) -> None:
        """Bars IB already has: (date, open, high, low, close, volume) each; no updates."""
        tape = self.tape.setdefault((symbol, bar_size), [])
        for when, open_, high, low, close, volume in rows:
            tape.append(ibc.BarData(when, open_, high, low, close, volume, close, 1))
        tape.sort(key=lambda b: _when(b.date))

    def push_bar(
        self,
        symbol: str,
        bar_size: str,
        when: date | datetime,
        price: float,
        volume: float = 100.0,
        delay: int = 0,
    ) -> Any:
        """A new bar starts at ``when`` with one trade at ``price``; subscribers hear of it
        at the next I/O (after ``delay`` more I/O cycles)."""
        bar = ibc.BarData(when, price, price, price, price, volume, price, 1)
        self.tape.setdefault((symbol, bar_size), []).append(bar)
        self._publish(symbol, bar_size, bar, delay)
        return bar

    def tick(self, symbol: str, bar_size: str, price: float, volume: float = 100.0) -> Any:
        """Another trade in the bar in progress: it changes in place at IB and in the lists."""
        bar = self.tape[(symbol, bar_size)][-1]
        bar.high, bar.low, bar.close = max(bar.high, price), min(bar.low, price), price
        bar.volume += volume
        bar.barCount += 1
        self._publish(symbol, bar_size, bar)
        return bar
