"""Strategy evaluation on a bar: which strategies signal what on the newest row.

A :class:`Runner` is an active strategy as the engine runs it (its class instance, the
indicators it needs, its ATR for stops). At each bar time the indicators are computed
once per symbol (the union of what the strategies on that symbol need) over a window
long enough for every warm-up, and each strategy reads its signal on the newest row;
strategies with the same class and parameters share one evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from marketdata.indicators import IndicatorSpec, compute
from strategies import base
from strategies.events import record_event
from strategies.models import Severity, Strategy
from strategies.registry import get_strategy
from strategies.risk_profile import RiskProfile

SIGNAL_TAIL = 20  # rows handed to signals(): the built-ins look back at most two bars
HISTORY_BARS = 5000  # longest indicator window per symbol
MIN_WINDOW = 500
SIGNAL_TYPES = ("exit_long", "exit_short", "entry_long", "entry_short")

#: (symbol, signal type, reason, indicator frame up to this bar)
Found = tuple[str, str, str, pd.DataFrame]


@dataclass
class Runner:
    """An active strategy as the engine runs it."""

    model: Strategy
    impl: base.Strategy
    symbols: list[str]
    atr_spec: IndicatorSpec | None
    specs: list[IndicatorSpec] = field(default_factory=list)


def make_runner(model: Strategy) -> Runner:
    """The runner of ``model``; raises whatever its class or risk settings refuse."""
    impl = get_strategy(model.strategy_class)(model.parameters, allow_short=model.allow_short)
    settings_ = RiskProfile.from_strategy(model)
    atr_spec = IndicatorSpec.of("atr", length=settings_.atr_length) if settings_.needs_atr else None
    symbols = sorted(s.symbol for s in model.stocks.all())
    return Runner(model, impl, symbols, atr_spec, list(impl.indicators()))


def indicator_frame(frame: pd.DataFrame, pos: int, specs: list[IndicatorSpec]) -> pd.DataFrame:
    """Indicators over a window long enough for every warm-up three times over (an
    EMA/RSI/ATR started that far back equals one started at the first bar to float
    precision), so live values match the backtester's whole-history ones."""
    length = min(HISTORY_BARS, max(MIN_WINDOW, 3 * max((s.warmup for s in specs), default=0)))
    window = frame.iloc[max(0, pos + 1 - length) : pos + 1]
    return compute(window, specs)


def evaluate(
    runners: list[Runner],
    history: dict[tuple[str, str], pd.DataFrame],
    timeframe: str,
    symbols: list[str],
    positions: dict[str, int],
    ts: datetime,
) -> dict[int, list[Found]]:
    """{strategy id: [(symbol, signal type, reason, frame)]} for the bar at ``ts`` (row
    ``positions[symbol]`` of each symbol's ``timeframe`` history)."""
    out: dict[int, list[Found]] = defaultdict(list)
    for symbol in symbols:
        on_symbol = [r for r in runners if symbol in r.symbols]
        if not on_symbol:
            continue
        # ATRs (stop levels, market context) are computed only for an entry, in trade()
        specs = [spec for r in on_symbol for spec in r.specs]
        frame = indicator_frame(history[(timeframe, symbol)], positions[symbol], specs)
        tail = frame.iloc[-SIGNAL_TAIL:]
        rows: dict[tuple, pd.Series] = {}  # strategies with the same class and parameters
        for runner in on_symbol:
            key = (runner.impl.key, tuple(sorted(runner.impl.p.items())), runner.impl.allow_short)
            try:
                if key not in rows:
                    rows[key] = runner.impl.signals(tail).to_frame().iloc[-1]
                row = rows[key]
            except Exception as exc:
                record_event(
                    "engine.signal_failed",
                    f"{runner.model.name} on {symbol}: {exc}",
                    strategy=runner.model,
                    severity=Severity.ERROR,
                )
                continue
            for kind in SIGNAL_TYPES:
                if not bool(row[kind]):
                    continue
                if kind.endswith("short") and not runner.impl.allow_short:
                    continue
                out[runner.model.pk].append((symbol, kind, str(row["reason"]), frame))
    return out
