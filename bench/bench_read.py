"""Read 50,000 bars of one symbol into a DataFrame with bars_frame; compare with Django's
values_list into a DataFrame, and show the server's own execution time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_marketdata .venv/bin/python bench/bench_read.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

BARS, RUNS = 50_000, 9
TARGET_MS = 150


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


def timed(fn, runs: int = RUNS) -> tuple[float, object]:
    fn()  # warm caches and connections
    samples, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), out


def main() -> None:
    setup()
    import pandas as pd
    from django.db import connection

    from marketdata.models import Bar
    from marketdata.providers.sample import synthetic_bars
    from marketdata.selectors import bars_frame
    from marketdata.services import ingest_bars

    (stock,) = bench_stocks(1, prefix="READ")
    if Bar.objects.filter(stock=stock, timeframe="1min").count() != BARS:
        Bar.objects.filter(stock=stock).delete()
        ingest_bars(stock, "1min", synthetic_bars(stock.symbol, BARS))

    def orm() -> pd.DataFrame:
        rows = Bar.objects.filter(stock=stock, timeframe="1min").order_by("timestamp")
        rows = list(rows.values_list("timestamp", "open", "high", "low", "close", "volume"))
        frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
        return frame.set_index("timestamp").astype("float64")

    fast_ms, frame = timed(lambda: bars_frame(stock, "1min"))
    orm_ms, _ = timed(orm, runs=3)
    assert len(frame) == BARS
    print(f"bars_frame (50,000 bars)          {fast_ms:7.1f} ms (median of {RUNS})")
    print(f"values_list into a DataFrame      {orm_ms:7.1f} ms (median of 3)")
    print(f"ratio values_list / bars_frame    {orm_ms / fast_ms:7.1f}x")
    if connection.vendor == "postgresql":
        from marketdata.pgcopy import _ARRAY_QUERY

        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + _ARRAY_QUERY.format(conditions=""), [stock.pk, "1min"]
            )
            plan = cursor.fetchone()[0]
            plan = plan[0] if isinstance(plan, list) else plan
        print(f"server execution (EXPLAIN ANALYZE) {plan['Execution Time']:6.1f} ms")
    print(f"target < {TARGET_MS} ms: {'met' if fast_ms < TARGET_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
