import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from trading.models import AlertRule
from trading.tests.factories import make_event, make_open_order, make_stock, make_story, make_strategy

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def world():
    stock = make_stock("AAPL")
    strategy = make_strategy(stock)
    make_story(stock, strategy, closed=True, pnl="50")
    open_trade = make_story(stock, strategy, closed=False)
    make_open_order(stock, strategy)
    make_event("engine started", strategy=strategy)
    return {"stock": stock, "strategy": strategy, "open": open_trade}


READ_URLS = ["/api/overview/", "/api/positions/", "/api/equity/", "/api/alert-rules/"]


def test_anonymous_is_refused(api, world):
    for url in READ_URLS:
        assert api.get(url).status_code in (401, 403), url
    assert api.post("/api/alert-rules/", {}, format="json").status_code in (401, 403)


def test_overview_positions_equity(api, viewer, world):
    api.force_authenticate(viewer)
    data = api.get("/api/overview/").json()
    assert set(data) == {"engine", "account", "positions", "strategies", "kill_switch", "signals", "events"}
    assert data["engine"]["running"] is False
    assert data["account"]["open_positions"] == 1
    # 10 shares bought at 142, last close 180 (the newest bar): unrealised 380
    assert float(data["positions"][0]["unrealized_pnl"]) == pytest.approx(380.0)
    # starting cash + realised 50 + unrealised 380 - the open trade's fees (2)
    assert float(data["account"]["equity"]) == pytest.approx(100000 + 50 + 380 - 2)
    assert data["strategies"][0]["state"] == "active" and data["strategies"][0]["open_trades"] == 1
    assert data["events"][0]["message"] == "engine started"
    assert data["signals"][0]["reasons"]
    positions = api.get("/api/positions/").json()
    assert positions[0]["trade_id"] == world["open"].pk
    assert len(api.get("/api/positions/", {"symbol": "aapl", "strategy": world["strategy"].pk}).json()) == 1
    assert api.get("/api/positions/", {"symbol": "MSFT"}).json() == []
    bad = api.get("/api/positions/", {"strategy": "x"})
    assert bad.status_code == 400 and "strategy" in bad.json()
    equity = api.get("/api/equity/").json()
    assert equity == [{"time": equity[0]["time"], "equity": 100050.0, "drawdown": 0.0}]


def test_alert_rules_crud_scoped_to_the_user(api, trader, viewer, django_user_model):
    other = django_user_model.objects.create_user("other", is_staff=True)
    AlertRule.objects.create(user=other, channel="email", target="o@x.test", event_types=["error"])
    api.force_authenticate(viewer)
    assert api.post("/api/alert-rules/", {}, format="json").status_code == 403  # not a trader

    api.force_authenticate(trader)
    assert api.get("/api/alert-rules/").json()["results"] == []
    bad = api.post(
        "/api/alert-rules/",
        {"channel": "pigeon", "target": "x", "event_types": ["nope"]},
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()) >= {"channel", "event_types"}
    bad = api.post(
        "/api/alert-rules/", {"channel": "email", "target": "x", "event_types": ["error"]}, format="json"
    )
    assert bad.status_code == 400 and "target" in bad.json()
    bad = api.post(
        "/api/alert-rules/", {"channel": "email", "target": "a@b.test", "event_types": []}, format="json"
    )
    assert bad.status_code == 400 and "event_types" in bad.json()
    assert api.post("/api/alert-rules/", "not json", content_type="application/json").status_code == 400

    created = api.post(
        "/api/alert-rules/",
        {"channel": "webhook", "target": "https://h.test/x", "event_types": ["trade_closed"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    rule_id = created.json()["id"]
    assert AlertRule.objects.get(pk=rule_id).user == trader
    patched = api.patch(f"/api/alert-rules/{rule_id}/", {"target": "not-a-url"}, format="json")
    assert patched.status_code == 400 and "target" in patched.json()
    patched = api.patch(f"/api/alert-rules/{rule_id}/", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert api.get("/api/alert-rules/?enabled=false").json()["count"] == 1
    assert api.get("/api/alert-rules/?ordering=-created_at").status_code == 200
    other_rule = AlertRule.objects.get(user=other)
    assert api.get(f"/api/alert-rules/{other_rule.pk}/").status_code == 404
    assert api.delete(f"/api/alert-rules/{rule_id}/").status_code == 204


def test_token_for_scripts(api, trader):
    bad = api.post("/api/token/", {"username": "trader"}, format="json")
    assert bad.status_code == 400 and "password" in bad.json()
    wrong = api.post("/api/token/", {"username": "trader", "password": "nope"}, format="json")
    assert wrong.status_code == 400
    ok = api.post("/api/token/", {"username": "trader", "password": "pw-trader-123"}, format="json")
    assert ok.status_code == 200
    token = ok.json()["token"]
    assert (
        api.post("/api/token/", {"username": "trader", "password": "pw-trader-123"}).json()["token"] == token
    )
    scripted = APIClient()
    scripted.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert scripted.get("/api/overview/").status_code == 200
    scripted.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert scripted.get("/api/overview/").status_code in (401, 403)


def test_drf_create_token_command(trader, capsys):
    call_command("drf_create_token", "trader")
    assert Token.objects.get(user=trader).key in capsys.readouterr().out


def test_schema_and_docs_are_served(api, viewer):
    api.force_authenticate(viewer)
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/overview/" in response.content and b"/api/alert-rules/" in response.content
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Swagger UI is served by the project, like every other asset (works offline).
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


def test_schema_of_this_app_has_no_warnings():
    """The trading endpoints document themselves fully (no guessed serializers or types)."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    mine = [
        m
        for m in messages
        if "trading/" in m or any(n in m for n in ("Overview", "Position", "Equity", "AlertRule", "Token"))
    ]
    assert not mine, mine
    assert "/api/positions/" in schema["paths"]


def test_schema_validates_without_warnings():
    """The whole project's schema (every app's API) validates with no warning."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
