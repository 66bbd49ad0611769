"""Crash safety: SIGKILL the engine at random points, restart it, and check the books.

The engine runs as ``manage.py run_trader --from --to --speed max`` against the test
database (PostgreSQL: pytest-django's test database, committed data through
``transaction=True``; SQLite: a migrated file, since the test database is in memory).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
PYTHON = sys.executable
START, END = "2017-01-01", "2017-08-31"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = """
from marketdata.services import load_sample
from strategies.services import create_strategy, set_active
stocks = [stock for stock, _, _ in load_sample()]
strategy = create_strategy(
    name="crash", stocks=stocks, timeframe="1day", max_open_positions=2, strategy_class="sma_crossover",
    parameters={"fast": 3, "slow": 10}, stop_loss_type="percent", stop_loss_value=2,
    take_profit_type="r_multiple", take_profit_value=1.5, position_fraction="0.45",
)
set_active(strategy, True)
print(strategy.pk)
"""

CHECK = """
import json
from collections import Counter
from decimal import Decimal
from datetime import datetime, UTC
from execution.models import Fill, Order, PaperAccount, PaperFill, PaperOrder, Trade
from execution.reconcile import database_net_positions
from marketdata.selectors import bars_frame
from execution.backtest.runner import run_backtest
from execution.backtest.settings import BacktestSettings
from strategies.models import Strategy
from strategies.services import build_strategy

account = PaperAccount.objects.get(name="default")
broker_ids = list(PaperOrder.objects.values_list("client_order_id", flat=True))
paper_fills = {f.execution_id: f for f in PaperFill.objects.select_related("order")}
fills = list(Fill.objects.select_related("order"))
cash = account.starting_cash
for f in paper_fills.values():
    signed = f.quantity if f.order.side == "buy" else -f.quantity
    cash -= signed * f.price + f.commission
positions = {p.symbol: p.quantity for p in account.positions.exclude(quantity=0)}
strategy = Strategy.objects.get(name="crash")
end = datetime.fromisoformat("%(end)s").replace(tzinfo=UTC)
bars = {s.symbol: bars_frame(s, "1day", end=end) for s in strategy.stocks.order_by("symbol")}
start = datetime.fromisoformat("%(start)s").replace(tzinfo=UTC)
result = run_backtest(build_strategy(strategy), bars, BacktestSettings.from_strategy(strategy), start=start)
expected = sorted((r.symbol, r.entry_time.isoformat(), float(r.quantity)) for r in result.trades.itertuples())
trades = Trade.objects.select_related("stock")
live = sorted((t.stock.symbol, t.entry_time.isoformat(), float(t.quantity)) for t in trades)
known = set(Order.objects.values_list("client_order_id", flat=True))
unsent = Order.objects.filter(status="pending_submit").values_list("client_order_id", flat=True)
print(json.dumps({
    "duplicate_broker_ids": [k for k, n in Counter(broker_ids).items() if n > 1],
    "broker_orders_unknown_here": sorted(set(broker_ids) - known),
    "paper_fills": sorted(paper_fills),
    "fills": sorted(f.execution_id for f in fills),
    "fill_mismatch": [f.execution_id for f in fills if f.execution_id in paper_fills and (
        f.quantity != paper_fills[f.execution_id].quantity or f.price != paper_fills[f.execution_id].price)],
    "cash_from_fills": float(cash),
    "cash": float(account.cash),
    "broker_positions": {k: float(v) for k, v in positions.items()},
    "trade_positions": {k: float(v) for k, v in database_net_positions().items()},
    "open_orders_not_at_broker": list(unsent),
    "expected_trades": expected,
    "live_trades": live,
}))
"""


def _database_url(tmp_path: Path) -> tuple[str, bool]:
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s.get("PASSWORD") else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}", False
    return f"sqlite:///{tmp_path / 'crash.sqlite3'}", True


def _shell(env: dict, code: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _engine(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "manage.py", "run_trader", "--from", START, "--to", END, "--speed", "max"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_never_duplicates_or_loses_anything(tmp_path):
    url, needs_migrate = _database_url(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_IGNORE_DOTENV": "1",
        "LOG_TO_FILE": "0",
        "LOG_LEVEL": "WARNING",
        "ENGINE_LOCK_DIR": str(tmp_path / "locks"),
    }
    if needs_migrate:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=120
        )
    _shell(env, SEED)

    rng = random.Random(int(os.environ.get("CRASH_SEED", time.time())))
    kills = 0
    for _ in range(4):
        process = _engine(env)
        time.sleep(rng.uniform(3.0, 6.0))
        if process.poll() is not None:
            break  # it finished before we got to kill it
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills += 1
    final = _engine(env)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr[-3000:]
    assert kills >= 1

    books = json.loads(_shell(env, CHECK % {"start": START, "end": END}))
    assert books["duplicate_broker_ids"] == []
    assert books["broker_orders_unknown_here"] == []
    assert books["fills"] == books["paper_fills"], "every broker fill applied exactly once"
    assert books["fill_mismatch"] == []
    assert books["cash"] == pytest.approx(books["cash_from_fills"], abs=1e-6)
    assert books["broker_positions"] == books["trade_positions"]
    assert books["open_orders_not_at_broker"] == []
    # and the interrupted run traded exactly what an uninterrupted backtest trades
    assert books["live_trades"] == books["expected_trades"]
    assert len(books["live_trades"]) >= 5
