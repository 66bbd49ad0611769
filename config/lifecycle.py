"""Start-up and shutdown lines in the log, for every long-running process."""

import atexit
import logging
import os

from django.conf import settings

logger = logging.getLogger("stocktrader")


def runtime_summary() -> str:
    """One line describing the stack this process runs on (no secrets)."""
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return (
        f"database={database} channel_layer={layer} broker={settings.BROKER} "
        f"marketdata={settings.MARKETDATA_PROVIDER} debug={settings.DEBUG}"
    )


def announce(process: str) -> None:
    """Log that ``process`` started, and log its shutdown when the interpreter exits."""
    pid = os.getpid()
    logger.info("%s starting (pid %s): %s", process, pid, runtime_summary())
    atexit.register(_log_stopped, process, pid)


def _log_stopped(process: str, pid: int) -> None:
    # At exit a stream may already be closed (e.g. pytest's capture): stay quiet then.
    logging.raiseExceptions = False
    logger.info("%s stopped (pid %s)", process, pid)
