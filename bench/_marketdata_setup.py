"""Django set-up shared by the market data benchmarks (each is a standalone script)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Never the development database: without DATABASE_URL, a throwaway SQLite file.
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / '.cache' / 'bench_marketdata.sqlite3'}")
    (ROOT / ".cache").mkdir(exist_ok=True)
    os.environ.setdefault("LOG_TO_FILE", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    db = connection.settings_dict
    print(f"database: {connection.vendor} {db.get('NAME')} ({db.get('HOST') or 'local'})")
    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL; set DATABASE_URL=postgres://... to measure them")


def bench_stocks(count: int, prefix: str = "BENCH"):
    from marketdata.models import Stock

    return [
        Stock.objects.get_or_create(
            symbol=f"{prefix}{i:02d}", exchange="BENCH", defaults={"name": "benchmark"}
        )[0]
        for i in range(count)
    ]
