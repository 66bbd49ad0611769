from unittest import mock

import pytest
from django.db.utils import OperationalError

from trading.models import EngineHeartbeat


@pytest.mark.django_db
def test_health_is_ok_and_reports_components(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is True
    assert body["engine"] == {"running": False, "state": "never started"}


@pytest.mark.django_db
def test_health_reports_a_fresh_engine_heartbeat(client):
    from django.utils import timezone

    now = timezone.now()
    EngineHeartbeat.objects.create(
        engine_id="e1", hostname="h", pid=1, broker="paper", state="trading", started_at=now, last_beat=now
    )
    engine = client.get("/health").json()["engine"]
    assert engine["running"] is True
    assert engine["state"] == "trading"


@pytest.mark.django_db
def test_health_is_503_when_the_database_is_down(client):
    with mock.patch("trading.health.connection.cursor", side_effect=OperationalError("password=hunter2")):
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == {
        "ok": False,
        "vendor": body["database"]["vendor"],
        "error": "OperationalError",
    }
    assert "hunter2" not in response.content.decode()
