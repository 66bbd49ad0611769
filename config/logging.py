"""Logging helpers: secret redaction and the LOGGING dict built from settings values."""

import logging
import re
from pathlib import Path

REDACTED = "***"

# Query parameters and key=value pairs whose values are secrets wherever they appear
# (URLs logged by requests/urllib3, exception messages, our own messages).
_SECRET_PAIR = re.compile(
    r"(?i)\b(apikey|api_key|token|password|passwd|secret|secret_key|authorization)"
    r"(\s*[=:]\s*|%3D)([^&\s,;'\"]+)"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Hide secret values in ``text``: known secret strings and ``key=value`` pairs."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrite every record so that no secret reaches a handler.

    The record's message is rendered once (args merged) and redacted, so formatters
    downstream never see the original values.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from django.conf import settings

        secrets = tuple(getattr(settings, "SECRET_VALUES", ()))
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


def build_logging(level: str, log_dir: Path, file_logging: bool = True) -> dict:
    """Console plus a daily-rotated file (30 days kept) under ``log_dir``."""
    handlers: dict[str, dict] = {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "standard",
            "filters": ["redact"],
        },
    }
    if file_logging:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers["file"] = {
            "class": "logging.handlers.TimedRotatingFileHandler",
            "filename": str(log_dir / "stocktrader.log"),
            "when": "midnight",
            "backupCount": 30,
            "utc": True,
            "encoding": "utf-8",
            "formatter": "standard",
            "filters": ["redact"],
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
        "formatters": {
            "standard": {
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            },
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            "django": {"level": "INFO", "propagate": True},
            "django.server": {"level": "WARNING", "propagate": True},
            "urllib3": {"level": "WARNING", "propagate": True},
            "numba": {"level": "WARNING", "propagate": True},
            "asyncio": {"level": "WARNING", "propagate": True},
        },
    }
