import atexit
import logging
from unittest import mock

from django.test import override_settings

from config.lifecycle import announce, runtime_summary


@override_settings(BROKER="paper", MARKETDATA_PROVIDER="sample", TWELVE_DATA_API_KEY="k-secret-123")
def test_start_is_logged_with_the_stack_and_shutdown_is_registered(caplog):
    with mock.patch.object(atexit, "register") as register, caplog.at_level(logging.INFO, "stocktrader"):
        announce("web (ASGI)")
    [record] = caplog.records
    assert record.getMessage().startswith("web (ASGI) starting (pid ")
    assert "broker=paper" in record.getMessage() and "marketdata=sample" in record.getMessage()
    assert "k-secret-123" not in runtime_summary()
    stopped, process, pid = register.call_args.args
    caplog.clear()
    with mock.patch.object(logging, "raiseExceptions", True), caplog.at_level(logging.INFO, "stocktrader"):
        stopped(process, pid)
    assert caplog.records[0].getMessage() == f"web (ASGI) stopped (pid {pid})"
