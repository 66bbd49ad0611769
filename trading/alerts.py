"""Alerts: journal events a trader asked to hear about, by e-mail or webhook.

Delivery is kept off the trading path: a post_save receiver on StrategyEvent
(:func:`on_event`, connected in ``TradingConfig.ready()``) waits for the transaction to
commit, then enqueues a Django task (``django.tasks``). With the
database backend a worker process sends it; with the immediate backend (the embedded
default) the task runs on a small background thread so the engine never waits on a mail
server or a slow webhook. Each delivery is retried with backoff, and every text that
leaves the process goes through ``config.logging.redact`` first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.tasks import task

from config.logging import REDACTED, redact
from strategies.events import record_event
from strategies.models import StrategyEvent
from trading.models import AlertChannel, AlertEventType, AlertRule

logger = logging.getLogger("trading.alerts")

SECRET_KEYS = ("password", "passwd", "secret", "token", "apikey", "api_key", "authorization")


def alert_types_for(event_type: str, severity: str) -> set[str]:
    """Which alert kinds a journal event belongs to (an event can be several)."""
    kind = event_type.lower()
    types: set[str] = set()
    if kind.startswith("alert."):
        return types  # never alert about alerting (a failing webhook would loop)
    if kind in ("trade.opened", "trade.open") or kind.endswith("trade_opened"):
        types.add(AlertEventType.TRADE_OPENED)
    if kind in ("trade.closed", "trade.close") or kind.endswith("trade_closed"):
        types.add(AlertEventType.TRADE_CLOSED)
    if "risk" in kind and "reject" in kind:
        types.add(AlertEventType.RISK_REJECTION)
    if kind.startswith("protection.") and not kind.endswith((".removed", ".expired", ".lifted")):
        types.add(AlertEventType.PROTECTION_TRIGGERED)
    if "broker" in kind and "disconnect" in kind:
        types.add(AlertEventType.BROKER_DISCONNECTED)
    if severity in ("error", "critical") or kind.endswith(".error") or kind == "error":
        types.add(AlertEventType.ERROR)
    return types


def _secrets() -> tuple[str, ...]:
    return tuple(getattr(settings, "SECRET_VALUES", ()))


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys masked and every string redacted."""
    if isinstance(value, dict):
        return {
            k: REDACTED if any(s in str(k).lower() for s in SECRET_KEYS) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value, _secrets())
    return value


def build_payload(event: Any, alert_types: set[str]) -> dict[str, Any]:
    """The JSON a webhook receives; ``text`` makes it readable by common chat bots as is."""
    strategy = event.strategy.name if event.strategy_id else None
    text = f"[{event.severity.upper()}] {event.event_type}" + (f" ({strategy})" if strategy else "")
    text += f": {event.message}"
    return scrub(
        {
            "text": text,
            "event_id": event.pk,
            "event_type": event.event_type,
            "alert_types": sorted(alert_types),
            "severity": event.severity,
            "strategy": strategy,
            "message": event.message,
            "metadata": event.metadata or {},
            "created_at": event.created_at.isoformat(),
        }
    )


class DeliveryError(Exception):
    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def send_email(rule: AlertRule, payload: dict[str, Any]) -> None:
    subject = redact(f"[stocktrader] {payload['text']}"[:180], _secrets())
    body = payload["text"] + "\n\n" + json.dumps(payload, indent=2, default=str)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [rule.target])
    except Exception as exc:  # SMTP errors of every kind
        raise DeliveryError(f"e-mail to {rule.target} failed: {type(exc).__name__}") from exc


def send_webhook(rule: AlertRule, payload: dict[str, Any]) -> None:
    try:
        response = requests.post(
            rule.target,
            json=payload,
            timeout=getattr(settings, "ALERT_WEBHOOK_TIMEOUT", 5.0),
            headers={"User-Agent": "stocktrader-alerts/1"},
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook failed: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        # A 4xx (other than rate limiting) will not get better by asking again.
        retry = response.status_code >= 500 or response.status_code == 429
        raise DeliveryError(f"webhook answered {response.status_code}", retry=retry)


SENDERS: dict[str, Callable[[AlertRule, dict[str, Any]], None]] = {
    AlertChannel.EMAIL: send_email,
    AlertChannel.WEBHOOK: send_webhook,
}


def deliver(rule: AlertRule, payload: dict[str, Any]) -> bool:
    """Send one alert with retries and backoff; True when it got through."""
    attempts = max(1, int(getattr(settings, "ALERT_MAX_ATTEMPTS", 3)))
    backoff = float(getattr(settings, "ALERT_RETRY_BACKOFF", 1.0))
    sender = SENDERS[rule.channel]
    for attempt in range(1, attempts + 1):
        try:
            sender(rule, payload)
        except DeliveryError as exc:
            logger.warning("alert rule %s attempt %s/%s: %s", rule.pk, attempt, attempts, exc)
            if not exc.retry or attempt == attempts:
                return False
            time.sleep(backoff * 2 ** (attempt - 1))
        else:
            return True
    return False  # pragma: no cover  (the loop always returns)


def matching_rules(alert_types: set[str]) -> list[AlertRule]:
    rules = AlertRule.objects.filter(enabled=True).select_related("user")
    return [r for r in rules if r.user.is_active and alert_types.intersection(r.event_types or [])]


def dispatch(event_id: int) -> dict[str, int]:
    """Send the alerts for one journal event; returns counts (for logs and tests)."""
    event = StrategyEvent.objects.select_related("strategy").filter(pk=event_id).first()
    if event is None:
        return {"sent": 0, "failed": 0}
    alert_types = alert_types_for(event.event_type, event.severity)
    sent = failed = 0
    if not alert_types:
        return {"sent": 0, "failed": 0}
    payload = build_payload(event, alert_types)
    for rule in matching_rules(alert_types):
        if deliver(rule, payload):
            sent += 1
        else:
            failed += 1
            record_event(
                "alert.failed",
                f"alert rule #{rule.pk} ({rule.get_channel_display()}) could not deliver event #{event.pk}",
                severity="warning",
                rule_id=rule.pk,
                event_id=event.pk,
            )
    return {"sent": sent, "failed": failed}


@task()
def send_alerts(event_id: int) -> dict[str, int]:
    """The background task: deliver the alerts of one StrategyEvent."""
    return dispatch(event_id)


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _background(fn: Callable[..., Any], *args: Any) -> None:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alerts")
    _executor.submit(_safely, fn, *args)


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("alert delivery crashed")
    finally:
        connection.close()  # the thread's own connection, not the caller's


def _immediate_backend() -> bool:
    return type(send_alerts.get_backend()).__name__ == "ImmediateBackend"


def _enqueue_task(event_id: int) -> None:
    send_alerts.enqueue(event_id)


def enqueue(event_id: int) -> None:
    """Hand one event to the task backend without making the caller wait for delivery.

    A queue backend (the database worker) returns at once; the immediate backend would run
    the delivery right here, so it is moved to a background thread instead.
    """
    if _immediate_backend():
        _background(_enqueue_task, event_id)
    else:
        _enqueue_task(event_id)


def on_event(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or kwargs.get("raw"):
        return
    if not alert_types_for(instance.event_type, instance.severity):
        return  # most events (signals, fills) alert nobody: no task for them
    if not AlertRule.objects.filter(enabled=True).exists():
        return
    event_id = instance.pk
    transaction.on_commit(lambda: enqueue(event_id))
