import json

import pytest
import requests
import responses
from django.core import mail

from strategies.events import record_event
from trading import alerts
from trading.models import AlertRule
from trading.tests.factories import make_strategy

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.test/alert"


@pytest.fixture(autouse=True)
def fast_retries(settings, monkeypatch):
    settings.ALERT_RETRY_BACKOFF = 0
    settings.ALERT_MAX_ATTEMPTS = 3
    settings.SECRET_VALUES = ("super-secret-value",)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Run the background hand-off inline so the test sees its effect.
    monkeypatch.setattr(alerts, "_background", lambda fn, *args: fn(*args))


def _rule(user, channel="webhook", target=HOOK, types=("trade_closed", "error"), enabled=True):
    return AlertRule.objects.create(
        user=user, channel=channel, target=target, event_types=list(types), enabled=enabled
    )


@pytest.mark.parametrize(
    ("event_type", "severity", "expected"),
    [
        ("trade.opened", "info", {"trade_opened"}),
        ("trade.closed", "info", {"trade_closed"}),
        ("risk.rejected", "warning", {"risk_rejection"}),
        ("protection.triggered", "warning", {"protection_triggered"}),
        ("protection.removed", "info", set()),
        ("broker.disconnected", "error", {"broker_disconnected", "error"}),
        ("engine.crashed", "critical", {"error"}),
        ("signal.created", "info", set()),
        ("alert.failed", "error", set()),
    ],
)
def test_event_types_map_to_alert_kinds(event_type, severity, expected):
    assert alerts.alert_types_for(event_type, severity) == expected


@responses.activate
def test_webhook_gets_a_redacted_json_post_after_commit(trader, django_capture_on_commit_callbacks):
    _rule(trader)
    responses.post(HOOK, json={"ok": True})
    strategy = make_strategy(name="Alpha")
    with django_capture_on_commit_callbacks(execute=True):
        record_event(
            "trade.closed",
            "closed AAPL with password=hunter2 and super-secret-value",
            strategy=strategy,
            api_key="abc123",
            pnl="12.5",
        )
    assert len(responses.calls) == 1
    body = json.loads(responses.calls[0].request.body)
    assert body["event_type"] == "trade.closed" and body["strategy"] == "Alpha"
    assert body["alert_types"] == ["trade_closed"]
    assert body["metadata"]["pnl"] == "12.5"
    text = json.dumps(body)
    assert "hunter2" not in text and "super-secret-value" not in text and "abc123" not in text


@responses.activate
def test_webhook_is_retried_then_succeeds(trader):
    rule = _rule(trader)
    responses.post(HOOK, status=503)
    responses.post(HOOK, body=requests.ConnectionError("down"))
    responses.post(HOOK, json={"ok": True})
    event = record_event("engine.error", "boom", severity="error")
    assert alerts.dispatch(event.pk) == {"sent": 1, "failed": 0}
    assert len(responses.calls) == 3
    assert rule.pk


@responses.activate
def test_webhook_client_error_is_not_retried_and_journalled(trader):
    _rule(trader)
    responses.post(HOOK, status=404)
    event = record_event("engine.error", "boom", severity="error")
    assert alerts.dispatch(event.pk) == {"sent": 0, "failed": 1}
    assert len(responses.calls) == 1
    from strategies.models import StrategyEvent

    assert StrategyEvent.objects.filter(event_type="alert.failed").exists()


def test_email_alert_is_sent_with_secrets_redacted(trader, django_capture_on_commit_callbacks):
    _rule(trader, channel="email", target="me@example.test", types=["risk_rejection"])
    with django_capture_on_commit_callbacks(execute=True):
        record_event("risk.rejected", "too big; token=XYZ987", severity="warning")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["me@example.test"]
    assert "risk.rejected" in message.subject
    assert "XYZ987" not in message.subject + message.body


def test_email_failure_is_retried_and_reported(trader, monkeypatch):
    _rule(trader, channel="email", target="me@example.test", types=["error"])
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise OSError("smtp down")

    monkeypatch.setattr(alerts, "send_mail", broken)
    event = record_event("x.error", "bad", severity="error")
    assert alerts.dispatch(event.pk) == {"sent": 0, "failed": 1}
    assert len(calls) == 3


@responses.activate
def test_disabled_rules_and_other_types_send_nothing(trader, django_capture_on_commit_callbacks):
    _rule(trader, enabled=False)
    _rule(trader, types=["trade_opened"])
    with django_capture_on_commit_callbacks(execute=True):
        record_event("trade.closed", "closed")
        record_event("signal.created", "a signal")
    assert len(responses.calls) == 0


def test_no_rules_means_no_task(trader, django_capture_on_commit_callbacks, monkeypatch):
    seen = []
    monkeypatch.setattr(alerts, "enqueue", lambda event_id: seen.append(event_id))
    with django_capture_on_commit_callbacks(execute=True):
        record_event("trade.closed", "closed")
    assert seen == []


def test_dispatch_of_missing_event_is_a_no_op():
    assert alerts.dispatch(999999) == {"sent": 0, "failed": 0}


def test_enqueue_with_a_queue_backend_does_not_use_a_thread(monkeypatch):
    sent = []
    monkeypatch.setattr(alerts, "_immediate_backend", lambda: False)
    monkeypatch.setattr(alerts, "_enqueue_task", lambda event_id: sent.append(event_id))
    monkeypatch.setattr(alerts, "_background", lambda *a: pytest.fail("no thread with a queue"))
    alerts.enqueue(5)
    assert sent == [5]


def test_enqueue_with_the_immediate_backend_runs_the_task(trader, monkeypatch):
    seen = []
    monkeypatch.setattr(alerts, "dispatch", lambda event_id: seen.append(event_id) or {})
    assert alerts._immediate_backend()
    alerts.enqueue(7)
    assert seen == [7]


def test_background_thread_runs_and_swallows_errors(monkeypatch):
    import threading

    monkeypatch.undo()
    done = threading.Event()

    def boom(event_id):
        done.set()
        raise RuntimeError("no")

    alerts._background(boom, 1)
    assert done.wait(5)


@pytest.mark.parametrize(
    ("channel", "target", "types", "field"),
    [
        ("email", "not-an-address", ["error"], "target"),
        ("webhook", "ftp://x", ["error"], "target"),
        ("webhook", HOOK, [], "event_types"),
        ("webhook", HOOK, ["nope"], "event_types"),
    ],
)
def test_rule_validation(trader, channel, target, types, field):
    from django.core.exceptions import ValidationError

    rule = AlertRule(user=trader, channel=channel, target=target, event_types=types)
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert field in info.value.message_dict
    assert str(AlertRule(user=trader, channel="email", target="a@b.c", name="mine")) == "mine"
