from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_migrations_are_up_to_date():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_the_schema_uses_the_original_table_names():
    tables = set(connection.introspection.table_names())
    assert {
        "strategies",
        "stocks",
        "trades",
        "trade_signals",
        "orders",
        "stock_data",
        "indicators",
        "strategy_events",
    } <= tables
