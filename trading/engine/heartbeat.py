"""The engine's heartbeat: one EngineHeartbeat row per engine process, read by /health.

A beat is written at most every ``interval`` seconds unless forced; a change of state
(starting, reconciling, trading, disconnected, stopped) is always written at once and
broadcast on the ``engine`` group so the pages show it without waiting for a beat.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from marketdata.clock import wall_now
from trading.models import EngineHeartbeat
from trading.realtime.broadcast import publish


class Heartbeat:
    def __init__(self, engine_id: str, broker_name: str, interval: float, started: datetime) -> None:
        self.engine_id = engine_id
        self.broker_name = broker_name
        self.interval = interval
        self.started = started
        self.state = "starting"
        self.row: EngineHeartbeat | None = None
        self._last_beat = 0.0

    def beat(
        self, details: Callable[[], dict[str, Any]], state: str | None = None, force: bool = False
    ) -> None:
        """Write the beat with ``details()`` (only called when a beat is due: it reads the
        engine's counters, and the engine beats after every bar)."""
        if state and state != self.state:
            self.state = state
            force = True
            publish("engine", "engine.state", {"engine_id": self.engine_id, "state": state})
        now = time.monotonic()
        if not force and now - self._last_beat < self.interval:
            return
        self._last_beat = now
        info = details()
        wall = wall_now()  # liveness of the process is real time, whatever the market clock
        if self.row is None:
            self.row, _ = EngineHeartbeat.objects.update_or_create(
                engine_id=self.engine_id,
                defaults={
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "broker": self.broker_name,
                    "state": self.state,
                    "details": info,
                    "started_at": self.started,
                    "last_beat": wall,
                },
            )
        else:
            EngineHeartbeat.objects.filter(pk=self.row.pk).update(
                state=self.state, details=info, last_beat=wall
            )
