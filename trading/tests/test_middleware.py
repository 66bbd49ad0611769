import logging

import pytest
from django.test import override_settings

from config.logging import RedactSecretsFilter, redact


@pytest.mark.django_db
def test_every_request_is_logged_with_an_echoed_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="trading.requests"):
        response = client.get("/health?apikey=sekret123", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    [record] = [r for r in caplog.records if r.name == "trading.requests"]
    line = record.getMessage()
    assert line.startswith("GET /health?apikey=*** 200 ")
    assert "request_id=abc-123" in line
    assert "sekret123" not in line


@pytest.mark.django_db
def test_a_request_id_is_generated_when_missing_or_invalid(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces")
    assert len(response["X-Request-ID"]) == 32


def test_redact_hides_query_parameters_and_known_secrets():
    text = "GET https://api.twelvedata.com/time_series?symbol=AAPL&apikey=abcd1234 password: pw1 tok=X"
    out = redact(text, secrets=("tok=X",))
    assert "abcd1234" not in out and "pw1" not in out and "tok=X" not in out
    assert "symbol=AAPL" in out


@override_settings(SECRET_VALUES=("my-ibkr-password",))
def test_log_filter_redacts_arguments_and_tracebacks():
    try:
        raise RuntimeError("login failed for my-ibkr-password")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "connect %s", ("my-ibkr-password",), sys.exc_info()
        )
    RedactSecretsFilter().filter(record)
    assert "my-ibkr-password" not in record.getMessage()
    assert "my-ibkr-password" not in record.exc_text
