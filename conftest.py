"""Project-wide pytest fixtures."""

import os

import pytest
from django.db import connection


def pytest_configure(config):
    """Give each test process its own channel-layer prefix.

    With Redis, groups such as "events" are global to the server: without this, xdist
    workers (and child processes they start) would receive each other's broadcasts.
    """
    from channels.layers import channel_layers
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]
    if layer["BACKEND"].endswith("RedisChannelLayer"):
        prefix = f"test{os.getpid()}"
        layer["CONFIG"]["prefix"] = prefix
        os.environ["CHANNEL_LAYER_PREFIX"] = prefix  # inherited by engine/daphne subprocesses
        channel_layers.backends.clear()


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('NAME')}; channel layer: {layer}"


@pytest.fixture
def trader(django_user_model):
    """A signed-in-able staff user (a trader)."""
    return django_user_model.objects.create_user("trader", password="pw-trader-123", is_staff=True)


@pytest.fixture
def viewer(django_user_model):
    """A signed-in-able user who may read but not trade."""
    return django_user_model.objects.create_user("viewer", password="pw-viewer-123")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
