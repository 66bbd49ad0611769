"""Health checks for /health: database, channel layer, engine heartbeat. No secrets."""

from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from marketdata.clock import wall_now
from trading.models import EngineHeartbeat


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def channel_layer_status() -> dict[str, Any]:
    layer = get_channel_layer()
    backend = type(layer).__name__ if layer else None
    try:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.send)(channel, {"type": "health.ping"})
        async_to_sync(layer.receive)(channel)
    except Exception as exc:
        return {"ok": False, "backend": backend, "error": type(exc).__name__}
    return {"ok": True, "backend": backend}


def engine_status() -> dict[str, Any]:
    try:
        beat = EngineHeartbeat.objects.order_by("-last_beat").first()
    except Exception as exc:
        return {"running": False, "error": type(exc).__name__}
    if beat is None:
        return {"running": False, "state": "never started"}
    stale_after = timedelta(seconds=settings.ENGINE_HEARTBEAT_STALE_SECONDS)
    age = (wall_now() - beat.last_beat).total_seconds()
    return {
        "running": age <= stale_after.total_seconds() and beat.state != "stopped",
        "state": beat.state,
        "broker": beat.broker,
        "last_beat": beat.last_beat.isoformat(),
        "seconds_since_beat": round(age, 1),
        "details": beat.details,
    }


def health_report() -> tuple[dict[str, Any], int]:
    """The report and its HTTP status: 503 when the database is unreachable."""
    database = database_status()
    report = {
        "status": "ok" if database["ok"] else "unavailable",
        "database": database,
        "channel_layer": channel_layer_status(),
        "engine": engine_status() if database["ok"] else {"running": False},
        "time": wall_now().isoformat(),
    }
    if database["ok"] and not report["channel_layer"]["ok"]:
        report["status"] = "degraded"
    return report, 200 if database["ok"] else 503
