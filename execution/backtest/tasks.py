"""Background work for backtests (django.tasks): backtests started from a page, the admin or
the API."""

from django.db import transaction
from django.tasks import task

from execution.backtest.models import BacktestRun, BacktestStatus
from execution.backtest.services import create_strategy_backtest_run, execute_backtest_run
from strategies.models import Strategy


@task()
def run_backtest(backtest_run_id: int) -> str:
    """Run a pending BacktestRun and store its results; returns its final status."""
    run = BacktestRun.objects.filter(pk=backtest_run_id).first()
    if run is None:
        return "missing"
    if run.status == BacktestStatus.DONE:
        return run.status  # a retried task does not run (and store) it twice
    return execute_backtest_run(run).status


def start_backtest(strategy: Strategy) -> BacktestRun:
    """Create a pending BacktestRun of ``strategy`` (its universe, timeframe and risk
    settings) and run it in the background (:func:`run_backtest`) once the row is
    committed. A request that makes no sense raises ``ValidationError``."""
    with transaction.atomic():
        run = create_strategy_backtest_run(strategy)
        transaction.on_commit(lambda: run_backtest.enqueue(run.pk))
    return run
