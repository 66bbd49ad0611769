"""Start-up validation of the environment.

Settings call :func:`configuration_problems` and stop with the first problem as one line
that names the variable, so a misconfigured process never half-starts.
"""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

MARKETDATA_PROVIDERS = ("sample", "twelvedata", "csv")
BROKERS = ("paper", "ibkr")
TASK_BACKENDS = ("immediate", "db")


class ConfigurationError(ImproperlyConfigured):
    """A setting is missing or invalid; the message is one line naming the variable."""


def configuration_problems(values: Mapping[str, object]) -> list[str]:
    """Return one readable line per problem in the resolved settings values."""
    problems: list[str] = []
    provider = values.get("MARKETDATA_PROVIDER")
    if provider not in MARKETDATA_PROVIDERS:
        problems.append(f"MARKETDATA_PROVIDER={provider!r} is not one of {', '.join(MARKETDATA_PROVIDERS)}")
    elif provider == "twelvedata" and not values.get("TWELVE_DATA_API_KEY"):
        problems.append("TWELVE_DATA_API_KEY is required when MARKETDATA_PROVIDER=twelvedata")

    broker = values.get("BROKER")
    if broker not in BROKERS:
        problems.append(f"BROKER={broker!r} is not one of {', '.join(BROKERS)}")
    elif broker == "ibkr":
        for name in ("IBKR_HOST", "IBKR_PORT", "IBKR_CLIENT_ID"):
            if values.get(name) in (None, ""):
                problems.append(f"{name} is required when BROKER=ibkr")

    backend = values.get("TASKS_BACKEND")
    if backend not in TASK_BACKENDS:
        problems.append(f"TASKS_BACKEND={backend!r} is not one of {', '.join(TASK_BACKENDS)}")
    return problems


def validate(values: Mapping[str, object]) -> None:
    """Raise :class:`ConfigurationError` with the first problem found."""
    problems = configuration_problems(values)
    if problems:
        raise ConfigurationError(problems[0])
