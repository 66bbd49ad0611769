"""Live engine latency: 50 active strategies over 20 symbols, paper broker.

For each new bar: the bar is stored (ingest_bars, committed), then the clock starts; the
engine loads it, lets the paper broker fill against it, computes each indicator once for
the symbol (the union of what its strategies need), asks every strategy on that symbol
for its signal on the newest bar, and sends the resulting orders through risk checks to
the paper broker; the clock stops when the last order is submitted. p50/p99 over
>= 1,000 bars. Targets (PostgreSQL): p50 < 100 ms, p99 < 250 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_engine .venv/bin/python bench/bench_engine.py

The database named in DATABASE_URL is dropped and created again (PostgreSQL), or a
throwaway SQLite file is used when DATABASE_URL is not set.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

SYMBOLS, STRATEGIES, PER_STRATEGY = 20, 50, 5
HISTORY, MEASURED = 600, 60  # bars per symbol stored before / arriving during the run
P50_TARGET, P99_TARGET = 0.100, 0.250
ROOT = Path(__file__).resolve().parent.parent

# (strategy class, parameter sets): short lengths so that the run trades
LIBRARY = [
    ("sma_crossover", [{"fast": f, "slow": s} for f, s in ((3, 8), (4, 10), (5, 12), (5, 15), (6, 20))]),
    ("ema_crossover", [{"fast": f, "slow": s} for f, s in ((3, 9), (4, 12), (6, 18))]),
    ("rsi_mean_reversion", [{"length": n} for n in (5, 7, 9, 14)]),
    ("macd_crossover", [{"fast": 6, "slow": 13, "signal": 5}, {"fast": 12, "slow": 26, "signal": 9}]),
    ("bollinger_reversion", [{"length": n, "std": 1.5} for n in (10, 20)]),
    ("donchian_breakout", [{"entry_length": n, "exit_length": n // 2} for n in (10, 20)]),
]


def fresh_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        path = ROOT / ".cache" / "bench_engine.sqlite3"
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    fresh_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_TO_FILE", "false")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_IGNORE_DOTENV", "1")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} {connection.settings_dict.get('NAME')}")
    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL; set DATABASE_URL=postgres://... to measure them")


class QueryCounter:
    """A connection.execute_wrapper that counts the statements sent."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def main() -> int:
    setup()
    from django.db import connection

    from execution.brokers.paper import PaperBroker
    from execution.models import Order
    from marketdata.models import Stock
    from marketdata.providers.sample import synthetic_bars
    from marketdata.services import ingest_bars
    from strategies.models import Strategy
    from trading.engine import Engine, EngineOptions

    stocks = [Stock.objects.create(symbol=f"BENCH{i:02d}", exchange="BENCH") for i in range(SYMBOLS)]
    series = {s.symbol: synthetic_bars(s.symbol, HISTORY + MEASURED, "1day", seed=7) for s in stocks}
    for stock in stocks:
        ingest_bars(stock, "1day", series[stock.symbol].iloc[:HISTORY])
    configs = [(key, params) for key, sets in LIBRARY for params in sets]
    for i in range(STRATEGIES):
        key, params = configs[i % len(configs)]
        strategy = Strategy.objects.create(
            name=f"bench {i:02d} {key}",
            strategy_class=key,
            parameters=params,
            timeframe="1day",
            active=True,
            position_fraction="0.02",
            stop_loss_type="percent",
            stop_loss_value=3,
            take_profit_type="r_multiple",
            take_profit_value=2,
            max_open_positions=PER_STRATEGY,
            risk_settings={"max_orders_per_minute": 0},
        )
        strategy.stocks.set([stocks[(i * PER_STRATEGY + k) % SYMBOLS] for k in range(PER_STRATEGY)])
    per_symbol = STRATEGIES * PER_STRATEGY / SYMBOLS
    print(
        f"{STRATEGIES} active strategies ({len(configs)} configurations of {len(LIBRARY)} classes), "
        f"{PER_STRATEGY} symbols each: {per_symbol:.1f} strategies per symbol, {SYMBOLS} symbols"
    )

    engine = Engine(
        EngineOptions(speed=None, heartbeat_interval=5),
        broker=PaperBroker(starting_cash="10000000"),
    )
    engine.setup()
    latencies: list[float] = []
    queries: list[int] = []  # database round trips per bar, same order as latencies
    counter = QueryCounter()
    orders = 0
    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    for t in range(HISTORY, HISTORY + MEASURED):
        for stock in stocks:
            ingest_bars(stock, "1day", series[stock.symbol].iloc[t : t + 1])
            started = time.perf_counter()
            with connection.execute_wrapper(counter):
                orders += len(engine.on_new_bar(stock.symbol, "1day"))
            # the engine notes when the bar's last order was submitted (before the
            # bookkeeping that follows: equity snapshot, cursor, heartbeat)
            latencies.append(engine.orders_submitted_at - started)
            queries.append(counter.take())
    if profiler is not None:
        profiler.disable()
        profiler.print_stats("cumtime")
    engine.shutdown()
    tail = sorted(range(len(latencies)), key=latencies.__getitem__)[-len(latencies) // 20 :]
    tail_queries = statistics.mean(queries[i] for i in tail)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"bars: {len(latencies)}, orders from signals: {orders}, orders in total: {Order.objects.count()}")
    print(
        f"bar stored -> orders submitted: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms "
        f"(targets p50 < {P50_TARGET * 1000:.0f}, p99 < {P99_TARGET * 1000:.0f})"
    )
    print(
        f"queries per bar (whole step): median {statistics.median(queries):.0f}, "
        f"mean over the slowest 5% of bars {tail_queries:.0f}"
    )
    ok = p50 < P50_TARGET and p99 < P99_TARGET
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
