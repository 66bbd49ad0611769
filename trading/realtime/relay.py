"""This process's local relay: what the database holds, pushed to this process's sockets.

It covers what the channel layer cannot: with the in-memory layer (the embedded default)
the engine runs in another process, so its broadcasts never arrive here; the relay replays
the journal (``StrategyEvent`` rows) to the ``events`` group and nudges
``signals``/``orders``/``trades`` from their event types. It also sends the newest stored
bar of each subscribed symbol on ``bars.<SYMBOL>``, whatever the layer, so prices move on
the pages even when nobody publishes bars.

Relay messages have the same shape as broadcasts, with their own ``source`` and ``seq``,
so pages track them like any other publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from marketdata.models import Bar
from strategies.models import StrategyEvent
from trading.realtime.groups import bars_group
from trading.realtime.receivers import event_payload

logger = logging.getLogger(__name__)

RELAY_INTERVAL_SECONDS = 1.0
RELAY_BATCH = 200
# Journal event type prefixes that mean "this group's data changed".
TRIGGER_GROUPS = {"signal.": "signals", "order.": "orders", "fill.": "orders", "trade.": "trades"}


def _newest_event_id() -> int:
    return StrategyEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _events_after(last_id: int) -> list[dict[str, Any]]:
    rows = StrategyEvent.objects.filter(id__gt=last_id).select_related("strategy").order_by("id")
    return [event_payload(e) for e in rows[:RELAY_BATCH]]


def _newest_bar_id() -> int:
    return Bar.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _bars_after(last_id: int, symbols: set[str]) -> tuple[int, list[dict[str, Any]]]:
    """The newest id seen, and the newest new bar per (symbol, timeframe) of ``symbols``."""
    newest = _newest_bar_id()
    if newest <= last_id or not symbols:
        return newest, []
    rows = (
        Bar.objects.filter(id__gt=last_id, stock__symbol__in=symbols)
        .order_by("timestamp", "id")
        .values_list("stock__symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume")
    )
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for symbol, timeframe, ts, o, h, lo, c, v in rows.iterator():
        latest[(symbol, timeframe)] = {
            "symbol": symbol,
            "timeframe": timeframe,
            "timestamp": ts.isoformat(),
            "open": float(o),
            "high": float(h),
            "low": float(lo),
            "close": float(c),
            "volume": v,
        }
    return newest, list(latest.values())


class LocalRelay:
    """Pushes what the database holds to this process's sockets (see the module docstring).

    One asyncio task per process, alive while at least one socket is connected; it polls
    with two indexed queries a second at most.
    """

    def __init__(self) -> None:
        self.source = f"relay:{socket.gethostname()}:{os.getpid()}"
        self.consumers: set[AsyncJsonWebsocketConsumer] = set()
        self.task: asyncio.Task | None = None
        self.sequences: dict[str, itertools.count] = {}
        self.last_event_id: int | None = None
        self.last_bar_id: int | None = None

    def attach(self, consumer: AsyncJsonWebsocketConsumer) -> None:
        self.consumers.add(consumer)
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run())

    def detach(self, consumer: AsyncJsonWebsocketConsumer) -> None:
        self.consumers.discard(consumer)

    @staticmethod
    def relays_journal() -> bool:
        """Only the in-memory layer needs the journal relayed: it never crosses processes."""
        return isinstance(get_channel_layer(), InMemoryChannelLayer)

    def _message(self, group: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        counter = self.sequences.setdefault(group, itertools.count(1))
        return {
            "type": kind,
            "group": group,
            "source": self.source,
            "seq": next(counter),
            "sent_at": timezone.now().isoformat(),
            "payload": payload,
        }

    async def _deliver(self, group: str, message: dict[str, Any]) -> None:
        for consumer in list(self.consumers):
            if group in getattr(consumer, "groups_joined", ()):
                try:
                    await consumer.send_json(message)
                except Exception:  # a closing socket must not stop the others
                    self.consumers.discard(consumer)

    async def poll_once(self) -> None:
        if self.relays_journal():
            if self.last_event_id is None:
                self.last_event_id = await database_sync_to_async(_newest_event_id)()
            for payload in await database_sync_to_async(_events_after)(self.last_event_id):
                self.last_event_id = payload["id"]
                await self._deliver("events", self._message("events", "event.created", payload))
                for prefix, group in TRIGGER_GROUPS.items():
                    if payload["event_type"].startswith(prefix):
                        trigger = {"event_id": payload["id"], "event_type": payload["event_type"]}
                        await self._deliver(group, self._message(group, "relay.changed", trigger))
        symbols = {
            g[len("bars.") :]
            for c in self.consumers
            for g in getattr(c, "groups_joined", ())
            if g.startswith("bars.")
        }
        if self.last_bar_id is None:
            self.last_bar_id = await database_sync_to_async(_newest_bar_id)()
        self.last_bar_id, bars = await database_sync_to_async(_bars_after)(self.last_bar_id, symbols)
        for bar in bars:
            group = bars_group(bar["symbol"])
            await self._deliver(group, self._message(group, "bar.updated", bar))

    async def _run(self) -> None:
        while self.consumers:
            try:
                await self.poll_once()
            except Exception:  # the database may be briefly unavailable: try again later
                logger.exception("live relay poll failed")
            await asyncio.sleep(RELAY_INTERVAL_SECONDS)
        self.last_event_id = self.last_bar_id = None  # a later start begins from "now"


RELAY = LocalRelay()
