"""Compute and store the whole indicator catalogue for 50,000 bars; print rows/s.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_marketdata .venv/bin/python bench/bench_indicators.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BARS = 50_000


# --- Django set-up against DATABASE_URL (each benchmark is a standalone script) ---
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


def main() -> None:
    setup()
    from marketdata.indicators import compute
    from marketdata.models import Bar, Indicator
    from marketdata.providers.sample import synthetic_bars
    from marketdata.selectors import bars_frame
    from marketdata.services import default_specs, ingest_bars, store_indicators

    (stock,) = bench_stocks(1, prefix="IND")
    from django.db import connection

    # The ORM path on SQLite is not what this measures; keep its run short.
    bars = BARS if connection.vendor == "postgresql" else 10_000
    if Bar.objects.filter(stock=stock, timeframe="1min").count() != bars:
        Bar.objects.filter(stock=stock).delete()
        ingest_bars(stock, "1min", synthetic_bars(stock.symbol, bars))
    Indicator.objects.filter(stock=stock).delete()
    specs = default_specs()

    frame = bars_frame(stock, "1min")
    compute(frame, specs)  # numba/pandas-ta warm-up, not measured
    start = time.perf_counter()
    compute(frame, specs)
    compute_s = time.perf_counter() - start

    for label in ("first store", "re-run (unchanged)"):
        start = time.perf_counter()
        results = store_indicators(stock, "1min", specs)
        elapsed = time.perf_counter() - start
        rows = sum(r.total for r in results)
        ins, upd = sum(r.inserted for r in results), sum(r.updated for r in results)
        print(
            f"{label:<20} {len(specs)} indicators, {rows:,} rows in {elapsed:5.2f}s: "
            f"{rows / elapsed:>9,.0f} rows/s ({ins:,} inserted, {upd:,} updated)"
        )
    print(f"compute only (pandas-ta, {len(specs)} indicators over {bars:,} bars): {compute_s:.2f}s")
    Indicator.objects.filter(stock=stock).delete()


if __name__ == "__main__":
    main()
