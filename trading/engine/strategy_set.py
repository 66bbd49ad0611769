"""The strategies this engine runs: the active ones it holds the lock of, as runners,
grouped by timeframe, reloaded when one is switched on, off or edited."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet

from marketdata.models import Stock
from strategies.events import record_event
from strategies.models import Severity, Strategy
from trading.engine.evaluator import Runner, make_runner
from trading.engine.locks import StrategyLocks


class StrategySet:
    def __init__(self, strategy_ids: list[int] | None, locks: StrategyLocks) -> None:
        self.strategy_ids = strategy_ids
        self.locks = locks
        self.runners: list[Runner] = []
        self.by_timeframe: dict[str, list[Runner]] = defaultdict(list)
        self._loaded: dict[int, Any] = {}

    def active(self) -> QuerySet:
        qs = Strategy.objects.filter(active=True)
        if self.strategy_ids:
            qs = qs.filter(pk__in=self.strategy_ids)
        return qs

    def load(self, stocks: dict[str, Stock]) -> None:
        """Runners for the active strategies whose lock this process gets (adding their
        stocks to ``stocks``); a strategy that cannot run is journalled and skipped."""
        qs = self.active().prefetch_related("stocks").order_by("id")
        self.runners = []
        self.by_timeframe = defaultdict(list)
        self._loaded = dict(self.active().values_list("pk", "updated_at"))
        for model in qs:
            if not self.locks.acquire(model.pk):
                record_event(
                    "engine.strategy_locked",
                    f"{model.name} is run by another engine; skipped",
                    strategy=model,
                    severity=Severity.WARNING,
                )
                continue
            try:
                runner = make_runner(model)
            except Exception as exc:
                record_event(
                    "engine.strategy_invalid",
                    f"{model.name} cannot run: {exc}",
                    strategy=model,
                    severity=Severity.ERROR,
                )
                self.locks.release(model.pk)
                continue
            for stock in model.stocks.all():
                stocks.setdefault(stock.symbol, stock)
            self.runners.append(runner)
            self.by_timeframe[model.timeframe].append(runner)

    def release_dropped(self) -> bool:
        """False when the active set is as loaded; else release the locks of strategies
        no longer active and return True (the caller reloads)."""
        wanted = dict(self.active().values_list("pk", "updated_at"))
        if wanted == self._loaded:
            return False
        for pk in set(self._loaded) - set(wanted):
            self.locks.release(pk)
        return True

    def symbols(self, timeframe: str) -> list[str]:
        return sorted({s for r in self.by_timeframe[timeframe] for s in r.symbols})

    def warmup(self, timeframe: str) -> int:
        return max((r.impl.warmup for r in self.by_timeframe[timeframe]), default=0)
