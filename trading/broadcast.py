"""Publishing to Channels groups, only after the surrounding transaction commits.

A page must never show what the database does not hold, so every publish is deferred
with ``transaction.on_commit``. Each message carries a per-group sequence number so a
page can notice a gap (a dropped message) and resync from the API.
"""

import itertools
import logging
import os
import socket
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Sequences are per publishing process; pages track gaps per (source, group).
SOURCE = f"{socket.gethostname()}:{os.getpid()}"
_sequence_lock = threading.Lock()
_sequences: dict[str, itertools.count] = {}


def _next_sequence(group: str) -> int:
    with _sequence_lock:
        counter = _sequences.setdefault(group, itertools.count(1))
        return next(counter)


def send_now(group: str, kind: str, payload: dict[str, Any]) -> None:
    """Send immediately (callers outside a transaction, or inside on_commit)."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {
        "type": kind,
        "group": group,
        "source": SOURCE,
        "seq": _next_sequence(group),
        "sent_at": timezone.now().isoformat(),
        "payload": payload,
    }
    try:
        async_to_sync(layer.group_send)(group, {"type": "broadcast", "message": message})
    except Exception:  # a broadcast failure must never break trading
        logger.exception("broadcast to %s failed", group)


def publish(group: str, kind: str, payload: dict[str, Any]) -> None:
    """Broadcast ``payload`` to ``group`` once the current transaction commits."""
    transaction.on_commit(lambda: send_now(group, kind, payload))
