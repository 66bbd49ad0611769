import subprocess
import sys
from pathlib import Path

import pytest

from config.env_checks import ConfigurationError, configuration_problems, validate

BASE = {
    "MARKETDATA_PROVIDER": "sample",
    "TWELVE_DATA_API_KEY": "",
    "BROKER": "paper",
    "IBKR_HOST": "",
    "IBKR_PORT": None,
    "IBKR_CLIENT_ID": None,
    "TASKS_BACKEND": "immediate",
}
ROOT = Path(__file__).resolve().parents[2]


def test_embedded_defaults_are_valid():
    assert configuration_problems(BASE) == []


def test_twelvedata_without_key_names_the_variable():
    with pytest.raises(ConfigurationError, match="TWELVE_DATA_API_KEY is required"):
        validate({**BASE, "MARKETDATA_PROVIDER": "twelvedata"})


def test_twelvedata_with_key_is_valid():
    assert (
        configuration_problems({**BASE, "MARKETDATA_PROVIDER": "twelvedata", "TWELVE_DATA_API_KEY": "k"})
        == []
    )


@pytest.mark.parametrize("missing", ["IBKR_HOST", "IBKR_PORT", "IBKR_CLIENT_ID"])
def test_ibkr_requires_each_connection_setting(missing):
    values = {**BASE, "BROKER": "ibkr", "IBKR_HOST": "127.0.0.1", "IBKR_PORT": 4002, "IBKR_CLIENT_ID": 7}
    values[missing] = "" if missing == "IBKR_HOST" else None
    assert configuration_problems(values) == [f"{missing} is required when BROKER=ibkr"]


def test_unknown_choices_are_named():
    problems = configuration_problems({**BASE, "BROKER": "robinhood", "MARKETDATA_PROVIDER": "x"})
    assert any("BROKER='robinhood'" in p for p in problems)
    assert any("MARKETDATA_PROVIDER='x'" in p for p in problems)


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_IGNORE_DOTENV": "1",
            "LOG_TO_FILE": "false",
            "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba"),
            **env,
        },
    )


def test_startup_stops_with_one_line_naming_the_variable():
    result = _manage({"BROKER": "ibkr"}, "check")
    assert result.returncode != 0
    assert result.stderr.strip() == "configuration error: IBKR_HOST is required when BROKER=ibkr"


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = _manage(
        {
            "DEBUG": "false",
            "SECRET_KEY": "p" * 20 + "-Zq8!kW3^xR7$mN2@vL5&tY9*bH4#cJ6",
            "ALLOWED_HOSTS": "trader.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
