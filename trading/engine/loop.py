"""The live engine loop: bars in, signals, risk, orders, broker events, heartbeat.

(Over 400 lines: one class whose other jobs are already in the sibling modules; what is
left is the order of a bar's step and the loop between bars, which read best in one place.)

One :meth:`Engine.step` per bar time of a timeframe, for every symbol that has a bar
then, in the backtester's order (execution/backtest/engine.py):

1. the broker sees the bar: market orders fill at its open (then the stop and target of
   a new position are placed), then stops and limits against its range;
2. open trades widen their MAE/MFE; the equity at the close is stored;
3. each indicator is computed once per symbol (the union of what the strategies on that
   symbol need), each strategy reads its signal on the newest row (evaluator.py);
4. per strategy: the drawdown protection, exit signals, then entry signals (sized on this
   close's equity, checked by the risk rules) become orders (orders.py);
5. the replay cursor is stored, so a restart resumes after the last finished bar.

The bars come from bar_feed.py; the engine clock is the bar's close, so a replay at any
speed decides exactly what it would have decided live. Between bars the engine applies
broker events, carries out the pages' commands and beats (heartbeat.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from django.db import connection

from execution import broker_reports, engine_commands, exits, order_lifecycle, pipeline, protections
from execution.brokers import get_broker
from execution.brokers.base import Broker, BrokerError, BrokerUnavailable, ConnectionEvent
from execution.equity import record_equity_snapshot
from execution.models import EngineCommand, EngineCommandStatus, Order, Trade, TradeStatus
from execution.reconcile import reconcile
from execution.trades import update_excursions
from marketdata import clock as market_clock
from marketdata.timeframes import offset
from strategies.events import record_event
from strategies.models import Severity
from trading.engine.bar_feed import DEMO_REPLAY_BARS, StoredBarFeed, price_decimal
from trading.engine.evaluator import Runner, evaluate
from trading.engine.heartbeat import Heartbeat
from trading.engine.live import LiveDriver, LiveOptions
from trading.engine.locks import StrategyLocks
from trading.engine.orders import SignalTrader
from trading.engine.strategy_set import StrategySet
from trading.realtime.broadcast import batched

logger = logging.getLogger("trading.engine")

STRATEGY_REFRESH = 5.0  # seconds between checks for strategies switched on or off
COMMAND_INTERVAL = 0.5  # seconds: pages see their command picked up well within a second


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
    live: LiveOptions | None = None  # wake at each bar close and ask the feed (live.py)


class Engine:
    def __init__(self, options: EngineOptions | None = None, broker: Broker | None = None):
        self.options = options or EngineOptions()
        self.broker = broker or get_broker(self.options.broker_name)
        self.engine_id = f"{socket.gethostname()}:{os.getpid()}"
        self.locks = StrategyLocks()
        self.strategies = StrategySet(self.options.strategy_ids, self.locks)
        self.feed = StoredBarFeed(self.options.start, self.options.end, self.options.demo_bars)
        self.trader = SignalTrader(self.broker, self.feed)
        self.clock: datetime = market_clock.now()
        self.trading_allowed = False
        self.stop_requested = False
        self.started = market_clock.wall_now()  # the process started: real time
        self.heartbeat = Heartbeat(
            self.engine_id, self.broker.name, self.options.heartbeat_interval, self.started
        )
        self._last_commands = 0.0
        self._last_refresh = time.monotonic()
        self.bars_processed = 0
        self.orders_submitted_at = 0.0
        self.live: LiveDriver | None = None
        if self.options.live is not None:
            self.live = LiveDriver(self, self.options.live)

    # the strategies', the feed's and the heartbeat's state, under the engine's old names
    @property
    def runners(self) -> list[Runner]:
        return self.strategies.runners

    @property
    def by_timeframe(self) -> dict[str, list[Runner]]:
        return self.strategies.by_timeframe

    @property
    def history(self) -> dict[tuple[str, str], pd.DataFrame]:
        return self.feed.history

    @property
    def stocks(self) -> dict:
        return self.feed.stocks

    @property
    def cursor(self) -> dict[str, datetime | None]:
        return self.feed.cursor

    @property
    def state(self) -> str:
        return self.heartbeat.state

    # --- lifecycle ------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def request_stop(signum, frame):
            logger.info("signal %s: stopping after the current step", signum)
            self.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def beat(self, state: str | None = None, force: bool = False, **details: Any) -> None:
        def info() -> dict[str, Any]:
            return {
                "strategies": sorted(r.model.pk for r in self.runners),
                "bars_processed": self.bars_processed,
                "cursor": {tf: c.isoformat() if c else None for tf, c in self.cursor.items()},
                "broker_connected": self.broker.is_connected,
                **(self.live.status() if self.live else {}),
                **details,
            }

        self.heartbeat.beat(info, state=state, force=force)

    def setup(self) -> None:
        self.beat("starting", force=True)
        self.load_strategies()
        self.load_history()
        self.connect_and_reconcile()

    def load_strategies(self, event: str = "engine.started") -> None:
        self.strategies.load(self.stocks)
        record_event(
            event,
            f"engine {self.engine_id} runs {len(self.runners)} strategies with the {self.broker.name} broker",
            strategies=[r.model.pk for r in self.runners],
        )

    def refresh_strategies(self) -> bool:
        """Pick up strategies activated, deactivated or edited since they were loaded
        (checked every STRATEGY_REFRESH seconds); True when the set changed. A strategy
        added to a running timeframe starts at the current bar, never trading the past."""
        if not self.strategies.release_dropped():
            return False
        self.load_strategies(event="engine.strategies_changed")
        for timeframe in self.by_timeframe:
            symbols, warmup = self.strategies.symbols(timeframe), self.strategies.warmup(timeframe)
            self.feed.load(timeframe, symbols, warmup, only_missing=True)
        return True

    def load_history(self) -> None:
        for timeframe in self.by_timeframe:
            self.feed.load(timeframe, self.strategies.symbols(timeframe), self.strategies.warmup(timeframe))
        self.feed.load_index()

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
        return self.feed.pending_times(list(self.by_timeframe))

    def poll_new_bars(self) -> int:
        """Append bars stored since the history was loaded (a live feed); how many."""
        return self.feed.poll_new_bars()

    def run(self) -> int:
        """Run until stopped (or, with --to, until the period is replayed); exit code."""
        self.install_signal_handlers()
        try:
            self.setup()
            if not self.runners:
                logger.warning("no active strategies to run")
            if self.live is not None:
                self.live.start()
                self.live.run(until=pd.Timestamp(self.options.end) if self.options.end else None)
                return 0
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
                order_lifecycle.resolve_unknown(order, self.broker)
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
            applier = broker_reports.EventApplier(events)
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
                exits.after_events(applier.touched, self.broker, at=self.clock)
            if reconnected:
                self.connect_and_reconcile()
        return applied

    # --- one bar time ---------------------------------------------------------------------
    # --- one bar time ---------------------------------------------------------------------
    def on_new_bar(self, symbol: str, timeframe: str) -> list[Order]:
        """A live feed's notification that ``symbol`` has new closed bars stored: load
        them and process each (the path the benchmark times)."""
        orders: list[Order] = []
        for ts in self.feed.append_new(symbol, timeframe):
            orders += self.step(timeframe, ts.to_pydatetime(), only={symbol})
        return orders

    def step(self, timeframe: str, ts: datetime, only: set[str] | None = None) -> list[Order]:
        """Everything that happens at the close of the bars opening at ``ts`` (of the
        symbols in ``only``, when bars of one time arrive symbol by symbol)."""
        self.clock = ts + offset(timeframe)
        bars, positions = self.feed.bars_at(timeframe, ts, only)
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
        signals = evaluate(self.by_timeframe[timeframe], self.history, timeframe, symbols, positions, ts)
        # 4. orders: every strategy's exits, then the entries, sized on one book of this
        # close so that entries see the cash the exits free (the backtester's order)
        orders: list[Order] = []
        # what the orders publish goes out in one trip, before the orders count as sent
        with batched():
            if self.trading_allowed and account is not None:
                last_prices = {s: price_decimal(bars[s]["close"]) for s in symbols}
                runners = self.by_timeframe[timeframe]
                for runner in runners:
                    orders += self.trader.trade(
                        runner, signals.get(runner.model.pk, []), "exit", ts, self.clock
                    )
                book = None
                for runner in runners:
                    if (runner.model.risk_settings or {}).get("max_drawdown"):
                        protections.drawdown_protection(runner.model, ts, account.net_liquidation)
                    entries = signals.get(runner.model.pk, [])
                    if any(kind.startswith("entry") for _, kind, _, _ in entries):
                        book = book or pipeline.Book.from_broker(account, last_prices)
                    orders += self.trader.trade(runner, entries, "entry", ts, self.clock, book)
            elif signals:
                # The broker is away: the signals are still recorded, and said not to be traded
                # (a signal is not sent late when the broker comes back).
                by_id = {r.model.pk: r for r in self.by_timeframe[timeframe]}
                for pk, found in signals.items():
                    for symbol, kind, reason, frame in found:
                        self.trader.store_signal(by_id[pk], symbol, kind, reason, frame, ts)
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
        self.feed.advance(timeframe, ts)
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
            if update_excursions(trade, price_decimal(bar["high"]), price_decimal(bar["low"])):
                changed.append(trade)
        if changed:
            Trade.objects.bulk_update(changed, ["mae", "mfe"])

    def close(self) -> None:
        connection.close()
