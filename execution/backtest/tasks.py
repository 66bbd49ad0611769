"""Background work for backtests (django.tasks): backtests started from a page or the API."""

from django.tasks import task

from execution.backtest.models import BacktestRun, BacktestStatus
from execution.backtest.services import execute_backtest_run


@task()
def run_backtest(backtest_run_id: int) -> str:
    """Run a pending BacktestRun and store its results; returns its final status."""
    run = BacktestRun.objects.filter(pk=backtest_run_id).first()
    if run is None:
        return "missing"
    if run.status == BacktestStatus.DONE:
        return run.status  # a retried task does not run (and store) it twice
    return execute_backtest_run(run).status
