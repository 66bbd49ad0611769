"""``manage.py ibkr_check``: fails fast and clearly, or prints what the risk checks use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from execution.brokers.ibkr import IBKRBroker
from execution.management.commands import ibkr_check
from execution.tests.fake_ib import FakeIB

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake(monkeypatch) -> FakeIB:
    ib = FakeIB()
    ib.add_position("MSFT", 50, 301.25)
    ib.add_position("AAPL", -10, 190.5)
    monkeypatch.setattr(ibkr_check, "make_broker", lambda **kw: IBKRBroker(ib=ib, **kw))
    return ib


def test_prints_server_time_account_buying_power_and_positions(fake):
    out = StringIO()
    call_command("ibkr_check", "--port", "4002", "--client-id", "9", stdout=out)
    text = out.getvalue()
    assert "Connected to IB at 127.0.0.1:4002 as client 9" in text
    assert "Server time:     2026-11-26T15:00:00+00:00" in text
    assert "Account:         DU1234567" in text
    assert "Net liquidation: 100,000.00 USD" in text
    assert "Buying power:    400,000.00 USD" in text
    assert "Positions:       2" in text
    assert text.index("AAPL") < text.index("MSFT") and "-10" in text
    assert "IBKR check passed" in text
    assert not fake.isConnected()  # disconnects when done


def test_a_refused_connection_is_one_line(fake):
    fake.listening = False
    with pytest.raises(CommandError) as err:
        call_command("ibkr_check", "--port", "4002", "--client-id", "9")
    assert "nothing is listening" in str(err.value) and "\n" not in str(err.value)


def test_missing_settings_are_named(settings):
    settings.IBKR_PORT = None
    with pytest.raises(CommandError, match="IBKR_PORT is not set"):
        call_command("ibkr_check")
    settings.IBKR_PORT = 4002
    settings.IBKR_CLIENT_ID = None
    with pytest.raises(CommandError, match="IBKR_CLIENT_ID is not set"):
        call_command("ibkr_check")


def test_nothing_listening_fails_fast_with_a_non_zero_exit():
    """The real command, the real ib_insync, a local port nobody listens on."""
    port = free_port()
    env = {**os.environ, "BROKER": "paper", "LOG_TO_FILE": "false", "DJANGO_IGNORE_DOTENV": "1"}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "ibkr_check",
            "--port",
            str(port),
            "--client-id",
            "5",
            "--timeout",
            "3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("CommandError: Cannot connect to IB at 127.0.0.1:")
    assert "nothing is listening" in lines[-1]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert elapsed < 20


def test_a_port_that_never_speaks_the_api_times_out_with_the_settings_to_check():
    """Something listens (TWS with the API off, a wrong service) but never answers the
    API handshake: the real ib_insync, a local socket that accepts and stays silent."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(CommandError, match="no API handshake within 0.5s.*ActiveX and Socket Clients"):
            call_command("ibkr_check", "--port", str(port), "--client-id", "5", "--timeout", "0.5")
    finally:
        for conn in accepted:
            conn.close()
        server.close()
    assert time.monotonic() - started < 5
