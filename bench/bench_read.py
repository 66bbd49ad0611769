"""Read 50,000 bars of one symbol into a DataFrame with bars_frame; compare with Django's
values_list into a DataFrame, and show the server's own execution time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_marketdata .venv/bin/python bench/bench_read.py
"""

from __future__ import annotations

import statistics
import time

from _marketdata_setup import bench_stocks, setup  # bench/ is on sys.path when run as a script

BARS, RUNS = 50_000, 9
TARGET_MS = 150


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
