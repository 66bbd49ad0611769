"""A strategy's risk profile: built from a row, and unknown risk_settings keys refused
(a misspelt limit would otherwise be silently off) through services, the API and admin."""

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from strategies import services
from strategies.models import Strategy
from strategies.risk_profile import (
    KNOWN_RISK_SETTING_KEYS,
    LIVE_RISK_SETTING_KEYS,
    RISK_SETTING_KEYS,
    RiskProfile,
    SettingsError,
)

pytestmark = pytest.mark.django_db

GOOD = {"name": "Trend", "strategy_class": "sma_crossover", "parameters": {"fast": 5, "slow": 20}}
PROJECT = Path(__file__).resolve().parents[2]


def test_profile_from_a_row_reads_its_fields_and_keys(stored_bars):
    strategy = Strategy(
        **GOOD,
        stop_loss_type="percent",
        stop_loss_value=5,
        risk_settings={"cooldown_bars": 2, "slippage_bps": 3, "max_position_pct": 0.2},
    )
    profile = RiskProfile.from_strategy(strategy)
    assert profile.stop_type == "percent" and profile.stop_value == 5.0
    assert profile.cooldown_bars == 2 and profile.costs.slippage_bps == 3.0


def test_unknown_key_is_refused_by_the_profile_with_the_closest_key():
    strategy = Strategy(**GOOD, risk_settings={"max_positon_pct": 0.1})
    with pytest.raises(SettingsError) as info:
        RiskProfile.from_strategy(strategy)
    message = info.value.errors["risk_settings.max_positon_pct"]
    assert "unknown setting" in message and "did you mean 'max_position_pct'?" in message


def test_unknown_key_without_a_close_one_lists_the_known_keys():
    strategy = Strategy(**GOOD, risk_settings={"zzz": 1})
    with pytest.raises(SettingsError) as info:
        RiskProfile.from_strategy(strategy)
    assert "known keys: allow_multiple_positions" in info.value.errors["risk_settings.zzz"]


def test_unknown_key_is_refused_by_the_services(stored_bars):
    with pytest.raises(ValidationError) as info:
        services.create_strategy(stocks=["AAA"], **GOOD, risk_settings={"max_positon_pct": 0.1})
    (message,) = info.value.message_dict["risk_settings"]
    assert message.startswith("max_positon_pct: unknown setting")
    assert "'max_position_pct'" in message
    assert not Strategy.objects.exists()
    strategy = services.create_strategy(stocks=["AAA"], **GOOD, risk_settings={"max_position_pct": 0.1})
    with pytest.raises(ValidationError, match="cooldwn_bars: unknown setting"):
        services.update_strategy(strategy, risk_settings={"cooldwn_bars": 3})
    strategy.refresh_from_db()
    assert strategy.risk_settings == {"max_position_pct": 0.1}


def test_unknown_key_is_a_400_on_the_risk_settings_field(stored_bars, trader_client):
    payload = {**GOOD, "symbols": ["AAA"], "risk_settings": {"max_positon_pct": 0.1}}
    response = trader_client.post("/api/strategies/", payload, format="json")
    assert response.status_code == 400, response.content
    (message,) = response.json()["risk_settings"]
    assert "max_positon_pct" in message and "did you mean 'max_position_pct'?" in message
    assert not Strategy.objects.exists()


def test_unknown_key_is_an_error_in_the_admin_form(stored_bars, trader):
    model_admin = admin.site._registry[Strategy]
    request = RequestFactory().get("/admin/strategies/strategy/add/")
    request.user = trader
    form_class = model_admin.get_form(request)
    data = {
        **{k: v for k, v in GOOD.items() if k != "parameters"},
        "parameters": '{"fast": 5, "slow": 20}',
        "timeframe": "1day",
        "sizing_method": "fixed_fraction",
        "position_fraction": "0.1",
        "risk_per_trade": "0.01",
        "stop_loss_type": "none",
        "stop_loss_value": "0",
        "take_profit_type": "none",
        "take_profit_value": "0",
        "max_open_positions": "5",
        "risk_settings": '{"max_positon_pct": 0.1}',
    }
    form = form_class(data)
    assert not form.is_valid()
    assert "did you mean 'max_position_pct'?" in " ".join(form.errors["risk_settings"])


def test_every_key_the_code_reads_is_known():
    """Every risk_settings key read anywhere (``risk_settings.get("...")``,
    ``strategy_limit(strategy, "...")``) is in the known set, and each known key is read."""
    read: set[str] = set()
    patterns = (
        re.compile(r"risk_settings(?: or \{\})?\)?\.get\(\s*\"(\w+)\""),
        re.compile(r"risk_settings\[\"(\w+)\"\]"),
        re.compile(r"strategy_limit\(\s*\w+,\s*\"(\w+)\""),
    )
    for path in PROJECT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts or "migrations" in path.parts:
            continue
        text = path.read_text()
        for pattern in patterns:
            read |= set(pattern.findall(text))
    assert read, "the patterns found no read at all"
    assert read <= KNOWN_RISK_SETTING_KEYS, read - KNOWN_RISK_SETTING_KEYS
    assert read >= LIVE_RISK_SETTING_KEYS  # each live key is read by a live check
    assert not set(RISK_SETTING_KEYS) & LIVE_RISK_SETTING_KEYS
