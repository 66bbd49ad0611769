"""The live engine: bars in, signals, risk, orders, broker events, heartbeat.

One :meth:`Engine.step` per bar time of a timeframe, for every symbol that has a bar
then, in the backtester's order (strategies/backtest/engine.py):

1. the broker sees the bar: market orders fill at its open (then the stop and target of
   a new position are placed), then stops and limits against its range;
2. open trades widen their MAE/MFE; the equity at the close is stored;
3. each indicator is computed once per symbol (the union of what the strategies on that
   symbol need), each strategy reads its signal on the newest row;
4. per strategy: the drawdown protection, exit signals, then entry signals (sized on this
   close's equity, checked by the risk rules) become orders;
5. the replay cursor is stored, so a restart resumes after the last finished bar.

Bars come from the database (the sample replayed as a live feed, or bars that
``fetch_bars`` stores); the engine clock is the bar's close, so a replay at any speed
decides exactly what it would have decided live.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from execution import commands as engine_commands
from execution import pipeline, risk, services
from execution.brokers import get_broker
from execution.brokers.base import Broker, BrokerError, BrokerUnavailable, ConnectionEvent
from execution.equity import record_equity_snapshot
from execution.models import (
    EngineCommand,
    EngineCommandStatus,
    ExecutionState,
    Order,
    Trade,
    TradeStatus,
)
from execution.reconcile import reconcile
from execution.selectors import cursor_key, engine_cursor
from execution.trades import update_excursions
from marketdata.indicators import IndicatorSpec, compute
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame
from marketdata.timeframes import offset
from strategies.base import Strategy as StrategyImpl
from strategies.events import record_event
from strategies.models import Severity, Strategy, TradeSignal
from strategies.registry import get_strategy
from trading.broadcast import batched, publish
from trading.engine.locks import StrategyLocks
from trading.models import EngineHeartbeat

logger = logging.getLogger("trading.engine")

SIGNAL_TAIL = 20  # rows handed to signals(): the built-ins look back at most two bars
HISTORY_BARS = 5000  # longest indicator window per symbol
MIN_WINDOW = 500
DEMO_REPLAY_BARS = 400  # a fresh sample replay starts this many bars before the newest bar
INDEX_SYMBOL = "SPX"
CONTEXT_ATR = IndicatorSpec.of("atr", length=14)
STRATEGY_REFRESH = 5.0  # seconds between checks for strategies switched on or off
COMMAND_INTERVAL = 0.5  # seconds: pages see their command picked up well within a second
SIGNAL_TYPES = ("exit_long", "exit_short", "entry_long", "entry_short")


@dataclass
class EngineOptions:
    start: datetime | None = None  # --from: replay bars from here
    end: datetime | None = None  # --to: replay up to here, then exit
    speed: float | None = None  # bars per second; None: as fast as possible
    strategy_ids: list[int] | None = None
    broker_name: str | None = None
    poll_interval: float = 1.0
    heartbeat_interval: float = 2.0
    demo_bars: int = DEMO_REPLAY_BARS


@dataclass
class Runner:
    """An active strategy as the engine runs it."""

    model: Strategy
    impl: StrategyImpl
    symbols: list[str]
    atr_spec: IndicatorSpec | None
    specs: list[IndicatorSpec] = field(default_factory=list)


def split_reasons(text: str) -> list[str]:
    """One reason per string, as strategies.services stores them."""
    return [part for part in (text or "").split("; ") if part]


def _bar_dict(ts: pd.Timestamp, row) -> dict[str, Any]:
    return {
        "timestamp": ts.to_pydatetime(),
        "open": float(row[0]),
        "high": float(row[1]),
        "low": float(row[2]),
        "close": float(row[3]),
        "volume": float(row[4]),
    }


def _dec(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 6)))


class Engine:
    def __init__(self, options: EngineOptions | None = None, broker: Broker | None = None):
        self.options = options or EngineOptions()
        self.broker = broker or get_broker(self.options.broker_name)
        self.engine_id = f"{socket.gethostname()}:{os.getpid()}"
        self.locks = StrategyLocks()
        self.runners: list[Runner] = []
        self.by_timeframe: dict[str, list[Runner]] = defaultdict(list)
        self.history: dict[tuple[str, str], pd.DataFrame] = {}
        self.stocks: dict[str, Stock] = {}
        self.cursor: dict[str, datetime | None] = {}
        self.clock: datetime = timezone.now()
        self.trading_allowed = False
        self.stop_requested = False
        self.state = "starting"
        self.heartbeat: EngineHeartbeat | None = None
        self._last_beat = 0.0
        self._last_commands = 0.0
        self._last_refresh = time.monotonic()
        self._loaded: dict[int, Any] = {}
        self._index: pd.DataFrame | None = None
        self.bars_processed = 0
        self.orders_submitted_at = 0.0
        self.started = timezone.now()

    # --- lifecycle ------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def request_stop(signum, frame):
            logger.info("signal %s: stopping after the current step", signum)
            self.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def beat(self, state: str | None = None, force: bool = False, **details: Any) -> None:
        if state and state != self.state:
            self.state = state
            force = True
            publish("engine", "engine.state", {"engine_id": self.engine_id, "state": state})
        now = time.monotonic()
        if not force and now - self._last_beat < self.options.heartbeat_interval:
            return
        self._last_beat = now
        info = {
            "strategies": sorted(r.model.pk for r in self.runners),
            "bars_processed": self.bars_processed,
            "cursor": {tf: c.isoformat() if c else None for tf, c in self.cursor.items()},
            "broker_connected": self.broker.is_connected,
            **details,
        }
        wall = timezone.now()
        if self.heartbeat is None:
            self.heartbeat, _ = EngineHeartbeat.objects.update_or_create(
                engine_id=self.engine_id,
                defaults={
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "broker": self.broker.name,
                    "state": self.state,
                    "details": info,
                    "started_at": self.started,
                    "last_beat": wall,
                },
            )
        else:
            EngineHeartbeat.objects.filter(pk=self.heartbeat.pk).update(
                state=self.state, details=info, last_beat=wall
            )

    def setup(self) -> None:
        self.beat("starting", force=True)
        self.load_strategies()
        self.load_history()
        self.connect_and_reconcile()

    def _active_strategies(self):
        qs = Strategy.objects.filter(active=True)
        if self.options.strategy_ids:
            qs = qs.filter(pk__in=self.options.strategy_ids)
        return qs

    def load_strategies(self, event: str = "engine.started") -> None:
        qs = self._active_strategies().prefetch_related("stocks").order_by("id")
        from strategies.backtest.settings import BacktestSettings

        self.runners = []
        self.by_timeframe = defaultdict(list)
        self._loaded = dict(self._active_strategies().values_list("pk", "updated_at"))
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
                impl = get_strategy(model.strategy_class)(model.parameters, allow_short=model.allow_short)
                settings_ = BacktestSettings.from_strategy(model)
            except Exception as exc:
                record_event(
                    "engine.strategy_invalid",
                    f"{model.name} cannot run: {exc}",
                    strategy=model,
                    severity=Severity.ERROR,
                )
                self.locks.release(model.pk)
                continue
            atr_spec = IndicatorSpec.of("atr", length=settings_.atr_length) if settings_.needs_atr else None
            symbols = sorted(s.symbol for s in model.stocks.all())
            for stock in model.stocks.all():
                self.stocks.setdefault(stock.symbol, stock)
            runner = Runner(model, impl, symbols, atr_spec, list(impl.indicators()))
            self.runners.append(runner)
            self.by_timeframe[model.timeframe].append(runner)
        record_event(
            event,
            f"engine {self.engine_id} runs {len(self.runners)} strategies with the {self.broker.name} broker",
            strategies=[r.model.pk for r in self.runners],
        )

    def refresh_strategies(self) -> bool:
        """Pick up strategies activated, deactivated or edited since they were loaded
        (checked every STRATEGY_REFRESH seconds); True when the set changed. A strategy
        added to a running timeframe starts at the current bar, never trading the past."""
        wanted = dict(self._active_strategies().values_list("pk", "updated_at"))
        if wanted == self._loaded:
            return False
        for pk in set(self._loaded) - set(wanted):
            self.locks.release(pk)
        self.load_strategies(event="engine.strategies_changed")
        for timeframe, runners in self.by_timeframe.items():
            for symbol in sorted({s for r in runners for s in r.symbols}):
                if (timeframe, symbol) not in self.history:
                    self.history[(timeframe, symbol)] = bars_frame(self.stocks[symbol], timeframe)
            if timeframe not in self.cursor:
                self.cursor[timeframe] = self._initial_cursor(timeframe, engine_cursor(timeframe))
        return True

    def load_history(self) -> None:
        for timeframe, runners in self.by_timeframe.items():
            symbols = sorted({s for r in runners for s in r.symbols})
            for symbol in symbols:
                self.history[(timeframe, symbol)] = bars_frame(self.stocks[symbol], timeframe)
            self.cursor[timeframe] = self._initial_cursor(timeframe, engine_cursor(timeframe))
        index = Stock.objects.filter(symbol=INDEX_SYMBOL).first()
        if index is not None:
            closes = bars_frame(index, "1day")["close"]
            if len(closes):
                self._index = pd.DataFrame({"close": closes, "sma200": closes.rolling(200).mean()})

    def _all_times(self, timeframe: str) -> pd.DatetimeIndex:
        frames = [f.index for (tf, _), f in self.history.items() if tf == timeframe]
        if not frames:
            return pd.DatetimeIndex([], tz="UTC")
        index = frames[0]
        for other in frames[1:]:
            index = index.union(other)
        return index

    def _initial_cursor(self, timeframe: str, saved: datetime | None) -> datetime | None:
        """Where this run starts: after the saved cursor when it lies in the requested
        period (a restart resumes), else just before --from, else (a fresh live replay of
        the sample) a few hundred bars before the newest bar, after every warm-up."""
        start, end = self.options.start, self.options.end
        if saved is not None and (start is None or saved >= start) and (end is None or saved <= end):
            return saved
        times = self._all_times(timeframe)
        if start is not None:
            before = times[times < pd.Timestamp(start)]
            return before[-1].to_pydatetime() if len(before) else None
        if saved is not None:
            return saved
        if not len(times):
            return None
        warmup = max((r.impl.warmup for r in self.by_timeframe[timeframe]), default=0)
        position = max(len(times) - self.options.demo_bars, min(warmup, len(times) - 1), 0)
        return times[position - 1].to_pydatetime() if position > 0 else None

    def connect_and_reconcile(self) -> None:
        """Trading stays blocked until this has passed; retried while the broker is down."""
        self.beat("reconciling", force=True)
        while not self.stop_requested:
            try:
                self.broker.connect()
                fresh_after = min((c for c in self.cursor.values() if c), default=None)
                report = reconcile(self.broker, fresh_after=fresh_after, at=self.clock_now())
                self.trading_allowed = True
                self.beat("trading", force=True, reconcile=report.summary())
                return
            except (BrokerUnavailable, BrokerError) as exc:
                record_event(
                    "engine.reconcile_failed", f"reconciliation failed: {exc}", severity=Severity.ERROR
                )
                self.beat("disconnected", force=True, error=str(exc))
                self.sleep(self.options.poll_interval * 5)

    def clock_now(self) -> datetime:
        return self.clock

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    def shutdown(self) -> None:
        self.beat("stopped", force=True)
        record_event("engine.stopped", f"engine {self.engine_id} stopped after {self.bars_processed} bars")
        self.locks.release_all()
        try:
            self.broker.disconnect()
        except Exception:  # pragma: no cover - nothing to do about it now
            logger.exception("broker disconnect failed")

    # --- the loop -------------------------------------------------------------------------
    def pending_times(self) -> list[tuple[datetime, str]]:
        """Bar times after each timeframe's cursor (and up to --to), oldest first."""
        out = []
        for timeframe in self.by_timeframe:
            times = self._all_times(timeframe)
            cursor = self.cursor.get(timeframe)
            if cursor is not None:
                times = times[times > pd.Timestamp(cursor)]
            if self.options.start is not None:
                times = times[times >= pd.Timestamp(self.options.start)]
            if self.options.end is not None:
                times = times[times <= pd.Timestamp(self.options.end)]
            out += [(t.to_pydatetime(), timeframe) for t in times]
        return sorted(out)

    def poll_new_bars(self) -> int:
        """Append bars stored since the history was loaded (a live feed); how many."""
        added = 0
        for (timeframe, symbol), frame in list(self.history.items()):
            last = frame.index[-1] if len(frame) else None
            qs = Bar.objects.filter(stock=self.stocks[symbol], timeframe=timeframe)
            if last is not None:
                qs = qs.filter(timestamp__gt=last.to_pydatetime())
            if not qs.exists():
                continue
            new = bars_frame(
                self.stocks[symbol], timeframe, start=last.to_pydatetime() if last is not None else None
            )
            if last is not None:
                new = new[new.index > last]
            if len(new):
                self.history[(timeframe, symbol)] = pd.concat([frame, new])
                added += len(new)
        return added

    def run(self) -> int:
        """Run until stopped (or, with --to, until the period is replayed); exit code."""
        self.install_signal_handlers()
        try:
            self.setup()
            if not self.runners:
                logger.warning("no active strategies to run")
            speed = self.options.speed
            idle_notice = False
            while not self.stop_requested:
                pending = self.pending_times()
                if not pending:
                    if self.options.end is not None:
                        break
                    if not idle_notice:
                        record_event("engine.caught_up", "all stored bars processed; waiting for new bars")
                        idle_notice = True
                    self.idle(self.options.poll_interval)
                    self.poll_new_bars()
                    continue
                idle_notice = False
                for ts, timeframe in pending:
                    if self.stop_requested:
                        break
                    started = time.monotonic()
                    self.step(timeframe, ts)
                    if speed:
                        self.idle(max(1.0 / speed - (time.monotonic() - started), 0))
                    else:
                        self.service()
            return 0
        finally:
            self.shutdown()

    def idle(self, seconds: float) -> None:
        """Between bars: broker events, commands, heartbeat; returns after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            self.service()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stop_requested:
                return
            self.sleep(min(remaining, 0.2))

    def service(self) -> None:
        """Broker events, then (at most every COMMAND_INTERVAL s) commands from pages, and
        (every STRATEGY_REFRESH s) strategies switched on or off."""
        self.handle_events()
        now = time.monotonic()
        if now - self._last_refresh >= STRATEGY_REFRESH:
            self._last_refresh = now
            self.refresh_strategies()
            self.resolve_unknown_orders()
        if (
            self.trading_allowed
            and self.broker.is_connected
            and now - self._last_commands >= COMMAND_INTERVAL
        ):
            self._last_commands = now
            if EngineCommand.objects.filter(status=EngineCommandStatus.PENDING).exists():
                engine_commands.process_commands(self.broker, at=self.clock)
                self.handle_events()
        self.beat()

    def resolve_unknown_orders(self) -> int:
        """Ask the broker about orders whose submit outcome was lost (a targeted query;
        never a guess). Returns how many were looked up."""
        if not (self.trading_allowed and self.broker.is_connected):
            return 0
        unknown = list(Order.objects.filter(status="unknown").select_related("stock", "strategy"))
        for order in unknown:
            try:
                services.resolve_unknown(order, self.broker)
            except BrokerError as exc:
                record_event(
                    "order.resolve_failed",
                    f"{order.client_order_id} is still unknown: {exc}",
                    strategy=order.strategy,
                    severity=Severity.WARNING,
                )
        return len(unknown)

    # --- broker events --------------------------------------------------------------------
    def handle_events(self, timeout: float = 0.0) -> int:
        applied = 0
        for _ in range(20):
            events = self.broker.poll_events(timeout)
            if not events:
                break
            applier = services.EventApplier(events)
            reconnected = False
            # one trip to the channel layer for what this batch of events publishes
            with batched():
                for event in events:
                    try:
                        applier.apply(event)
                    except Exception as exc:
                        logger.exception("applying %r failed", event)
                        record_event(
                            "engine.event_failed",
                            f"applying {type(event).__name__} failed: {exc}",
                            severity=Severity.ERROR,
                        )
                        continue
                    applied += 1
                    if isinstance(event, ConnectionEvent):
                        if event.connected and self.state == "disconnected":
                            reconnected = True
                        elif not event.connected:
                            self.beat("disconnected", error=event.message)
                services.after_events(applier.touched, self.broker, at=self.clock)
            if reconnected:
                self.connect_and_reconcile()
        return applied

    # --- one bar time ---------------------------------------------------------------------
    def on_new_bar(self, symbol: str, timeframe: str) -> list[Order]:
        """A live feed's notification that ``symbol`` has new closed bars stored: load
        them and process each (the path the benchmark times)."""
        key = (timeframe, symbol)
        frame = self.history[key]
        last = frame.index[-1] if len(frame) else None
        new = bars_frame(
            self.stocks[symbol], timeframe, start=last.to_pydatetime() if last is not None else None
        )
        if last is not None:
            new = new[new.index > last]
        if not len(new):
            return []
        self.history[key] = pd.concat([frame, new])
        orders: list[Order] = []
        for ts in new.index:
            orders += self.step(timeframe, ts.to_pydatetime(), only={symbol})
        return orders

    def step(self, timeframe: str, ts: datetime, only: set[str] | None = None) -> list[Order]:
        """Everything that happens at the close of the bars opening at ``ts`` (of the
        symbols in ``only``, when bars of one time arrive symbol by symbol)."""
        self.clock = ts + offset(timeframe)
        stamp = pd.Timestamp(ts)
        bars: dict[str, dict] = {}
        positions: dict[str, int] = {}
        for (tf, symbol), frame in self.history.items():
            if tf != timeframe or (only is not None and symbol not in only):
                continue
            pos = frame.index.searchsorted(stamp)
            if pos < len(frame) and frame.index[pos] == stamp:
                bars[symbol] = _bar_dict(stamp, frame.iloc[pos].to_numpy())
                positions[symbol] = pos
        if not bars:
            return []
        symbols = sorted(bars)
        # 1. the broker sees the bar
        opener = getattr(self.broker, "on_bars_open", None)
        if opener is not None:
            opener({s: bars[s] for s in symbols})
        else:
            for s in symbols:
                self.broker.on_bar_open(s, bars[s])
        self.handle_events()
        batch = getattr(self.broker, "on_bars", None)
        if batch is not None:
            batch({s: bars[s] for s in symbols})
        else:
            for s in symbols:
                self.broker.on_bar(s, bars[s])
        self.handle_events()
        # 2. excursions; the account at the close
        self.update_excursions(bars)
        account = None
        if self.trading_allowed:
            try:
                account = self.broker.account()
            except BrokerError as exc:
                record_event(
                    "engine.account_failed", f"account query failed: {exc}", severity=Severity.WARNING
                )
        # 3. indicators once per symbol, then each strategy's signal on the newest row
        signals = self.evaluate(timeframe, symbols, positions, ts)
        # 4. orders: every strategy's exits, then the entries, sized on one book of this
        # close so that entries see the cash the exits free (the backtester's order)
        orders: list[Order] = []
        # what the orders publish goes out in one trip, before the orders count as sent
        with batched():
            if self.trading_allowed and account is not None:
                last_prices = {s: _dec(bars[s]["close"]) for s in symbols}
                runners = self.by_timeframe[timeframe]
                for runner in runners:
                    orders += self.trade(runner, signals.get(runner.model.pk, []), "exit", ts)
                book = None
                for runner in runners:
                    if (runner.model.risk_settings or {}).get("max_drawdown"):
                        risk.drawdown_protection(runner.model, ts, account.net_liquidation)
                    entries = signals.get(runner.model.pk, [])
                    if any(kind.startswith("entry") for _, kind, _, _ in entries):
                        book = book or pipeline.Book.from_broker(account, last_prices)
                    orders += self.trade(runner, entries, "entry", ts, book)
            elif signals:
                # The broker is away: the signals are still recorded, and said not to be traded
                # (a signal is not sent late when the broker comes back).
                by_id = {r.model.pk: r for r in self.by_timeframe[timeframe]}
                for pk, found in signals.items():
                    for symbol, kind, reason, frame in found:
                        self.store_signal(by_id[pk], symbol, kind, reason, frame, ts)
                        record_event(
                            "engine.signal_not_traded",
                            f"{by_id[pk].model.name} {symbol} {kind.replace('_', ' ')} not traded: "
                            "broker unavailable",
                            strategy=by_id[pk].model,
                            severity=Severity.WARNING,
                        )
        self.orders_submitted_at = time.perf_counter()
        # 5. after the orders are out: their events, the equity at this close, the cursor
        self.handle_events()
        if account is not None:
            record_equity_snapshot(ts, account)
        self.cursor[timeframe] = ts
        ExecutionState.objects.update_or_create(
            key=cursor_key(timeframe), defaults={"value": {"ts": ts.isoformat()}}
        )
        self.bars_processed += 1
        self.beat()
        return orders

    def update_excursions(self, bars: dict[str, dict]) -> None:
        stock_ids = {self.stocks[s].pk: s for s in bars}
        changed = []
        # only what the excursions need: not the market context's JSON, on every bar
        open_trades = Trade.objects.filter(status=TradeStatus.OPEN, stock_id__in=stock_ids).only(
            "stock_id", "direction", "entry_price", "mae", "mfe"
        )
        for trade in open_trades:
            bar = bars[stock_ids[trade.stock_id]]
            if update_excursions(trade, _dec(bar["high"]), _dec(bar["low"])):
                changed.append(trade)
        if changed:
            Trade.objects.bulk_update(changed, ["mae", "mfe"])

    def indicator_frame(
        self, timeframe: str, symbol: str, pos: int, specs: list[IndicatorSpec]
    ) -> pd.DataFrame:
        """Indicators over a window long enough for every warm-up three times over (an
        EMA/RSI/ATR started that far back equals one started at the first bar to float
        precision), so live values match the backtester's whole-history ones."""
        frame = self.history[(timeframe, symbol)]
        length = min(HISTORY_BARS, max(MIN_WINDOW, 3 * max((s.warmup for s in specs), default=0)))
        window = frame.iloc[max(0, pos + 1 - length) : pos + 1]
        return compute(window, specs)

    def evaluate(self, timeframe: str, symbols: list[str], positions: dict[str, int], ts: datetime):
        """{strategy id: [(symbol, signal type, reason, row, frame)]} for the newest bar."""
        out: dict[int, list] = defaultdict(list)
        for symbol in symbols:
            runners = [r for r in self.by_timeframe[timeframe] if symbol in r.symbols]
            if not runners:
                continue
            # ATRs (stop levels, market context) are computed only for an entry, in trade()
            specs = [spec for r in runners for spec in r.specs]
            frame = self.indicator_frame(timeframe, symbol, positions[symbol], specs)
            tail = frame.iloc[-SIGNAL_TAIL:]
            rows: dict[tuple, pd.Series] = {}  # strategies with the same class and parameters
            for runner in runners:
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

    def index_trend(self, ts: datetime) -> dict[str, Any] | None:
        if self._index is None:
            return None
        known = self._index.loc[: pd.Timestamp(ts)]
        if not len(known) or np.isnan(known["sma200"].iat[-1]):
            return None
        close, sma = float(known["close"].iat[-1]), float(known["sma200"].iat[-1])
        return {
            "symbol": INDEX_SYMBOL,
            "close": round(close, 2),
            "sma200": round(sma, 2),
            "trend": "up" if close > sma else "down",
            "distance_pct": round(100 * (close / sma - 1), 2),
        }

    def store_signal(
        self, runner: Runner, symbol: str, kind: str, reason: str, frame: pd.DataFrame, ts: datetime
    ):
        snapshot = runner.impl.indicator_snapshot(frame, len(frame) - 1)
        close = _dec(frame["close"].iat[-1])
        signal_row = TradeSignal(
            strategy=runner.model,
            stock=self.stocks[symbol],
            timestamp=ts,
            signal_type=kind,
            price=close,
            reasons=split_reasons(reason),
            indicator_values=snapshot,
        )
        try:
            # insert first: the unique (strategy, stock, bar, type) finds a bar seen before
            with transaction.atomic():
                signal_row.save(force_insert=True)
                record_event(
                    f"signal.{kind}",
                    f"{runner.model.name} {symbol} {kind.replace('_', ' ')}: {reason}",
                    strategy=runner.model,
                    signal_id=signal_row.pk,
                    symbol=symbol,
                )
        except IntegrityError:
            seen = TradeSignal.objects.filter(
                strategy=runner.model, stock=self.stocks[symbol], timestamp=ts, signal_type=kind
            ).first()
            if seen is None:
                raise
            signal_row = seen
        else:
            publish(
                "signals",
                "signal.created",
                {
                    "id": signal_row.pk,
                    "strategy_id": runner.model.pk,
                    "strategy": runner.model.name,
                    "symbol": symbol,
                    "signal_type": kind,
                    "timestamp": ts.isoformat(),
                    "price": str(close),
                    "reasons": signal_row.reasons,
                },
            )
        return signal_row, snapshot, close

    def trade(
        self, runner: Runner, signals: list, phase: str, ts: datetime, book: pipeline.Book | None = None
    ) -> list[Order]:
        """The ``phase`` ("exit" or "entry") signals of one strategy, in symbol order."""
        strategy = runner.model
        orders: list[Order] = []
        chosen = sorted((s for s in signals if s[1].startswith(phase)), key=lambda s: s[0])
        if not chosen:
            return orders
        if phase == "entry":
            strategy.refresh_from_db(fields=["kill_switch", "active"])
        for symbol, kind, reason, frame in chosen:
            signal_row, snapshot, close = self.store_signal(runner, symbol, kind, reason, frame, ts)
            atr = None
            if phase == "entry":
                extra = [CONTEXT_ATR] + ([runner.atr_spec] if runner.atr_spec else [])
                frame = compute(frame, extra)
                if runner.atr_spec:
                    atr = float(frame[runner.atr_spec.columns[0]].iat[-1])
                    atr = None if np.isnan(atr) else atr
            ctx = pipeline.SignalContext(
                strategy=strategy,
                stock=self.stocks[symbol],
                signal_type=kind,
                bar_time=ts,
                close=close,
                now=self.clock,
                reasons=split_reasons(reason),
                indicators=snapshot,
                atr=atr,
                signal=signal_row,
            )
            if phase == "entry":
                context_atr = float(frame[CONTEXT_ATR.columns[0]].iat[-1])
                known = not np.isnan(context_atr)
                ctx.market_context = {
                    "timeframe": strategy.timeframe,
                    "signal_bar": ts.isoformat(),
                    "close": float(close),
                    "atr": round(context_atr, 4) if known else None,
                    "atr_pct": round(100 * context_atr / float(close), 3) if known else None,
                    "index": self.index_trend(ts),
                }
            try:
                order = pipeline.execute(ctx, self.broker, book)
            except Exception as exc:
                logger.exception("signal of %s on %s failed", strategy.name, symbol)
                record_event(
                    "engine.order_failed",
                    f"{strategy.name} {symbol} {kind}: {exc}",
                    strategy=strategy,
                    severity=Severity.ERROR,
                )
                continue
            if order is not None:
                orders.append(order)
                TradeSignal.objects.filter(pk=signal_row.pk, executed=False).update(executed=True)
        return orders

    def close(self) -> None:
        connection.close()
