"""Compute and store the whole indicator catalogue for 50,000 bars; print rows/s.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_marketdata .venv/bin/python bench/bench_indicators.py
"""

from __future__ import annotations

import time

from _marketdata_setup import bench_stocks, setup  # bench/ is on sys.path when run as a script

BARS = 50_000


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
