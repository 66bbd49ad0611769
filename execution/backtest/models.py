"""Stored backtests and parameter sweeps (the backtester's inputs and results).

Imported by ``execution.models`` so Django sees them as execution's models; their tables
kept the names they had in strategies (``backtest_runs``, ``sweep_runs``).
"""

from django.db import models

from marketdata.timeframes import Timeframe
from strategies.models import Strategy


class BacktestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BacktestRun(models.Model):
    """The inputs and results of one backtest."""

    strategy = models.ForeignKey(
        Strategy, on_delete=models.SET_NULL, null=True, blank=True, related_name="backtests"
    )
    strategy_class = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict)
    symbols = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    settings = models.JSONField(default=dict, help_text="Cash, costs, sizing, risk settings")
    status = models.CharField(max_length=8, choices=BacktestStatus.choices, default=BacktestStatus.PENDING)
    metrics = models.JSONField(default=dict, blank=True)
    equity_curve = models.JSONField(default=list, blank=True)
    trades = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "backtest_runs"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Backtest #{self.pk} {self.strategy_class} {self.status}"


class SweepRun(models.Model):
    """A parameter sweep: every grid point backtested in-sample and out-of-sample, ranked."""

    strategy_class = models.CharField(max_length=64)
    grid = models.JSONField(default=dict, help_text="Parameter -> list of values")
    base_parameters = models.JSONField(default=dict, blank=True)
    symbols = models.JSONField(default=list)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    split = models.DateTimeField(null=True, blank=True, help_text="Start of the out-of-sample period")
    rank_by = models.CharField(max_length=32, default="sharpe")
    settings = models.JSONField(default=dict)
    results = models.JSONField(default=list, blank=True, help_text="One row per grid point, best first")
    duration_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "sweep_runs"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Sweep #{self.pk} {self.strategy_class} by {self.rank_by}"
