"""A strategy's signals on one bar become stored signals and orders.

Each signal is stored (once: the unique (strategy, stock, bar, type) finds a bar seen
before), journalled and broadcast; then :mod:`execution.pipeline` sizes and checks it
and, unless the risk rules refuse, sends the order. An entry carries its market context
(ATR, the index trend) into the trade it opens.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import IntegrityError, transaction

from execution import pipeline
from execution.brokers.base import Broker
from execution.models import Order
from marketdata.indicators import IndicatorSpec, compute
from strategies.events import record_event
from strategies.models import Severity, TradeSignal
from trading.engine.bar_feed import INDEX_SYMBOL, StoredBarFeed, price_decimal
from trading.engine.evaluator import Found, Runner
from trading.realtime.broadcast import publish

logger = logging.getLogger("trading.engine")

CONTEXT_ATR = IndicatorSpec.of("atr", length=14)


def split_reasons(text: str) -> list[str]:
    """One reason per string, as strategies.services stores them."""
    return [part for part in (text or "").split("; ") if part]


def index_trend(index: pd.DataFrame | None, ts: datetime) -> dict[str, Any] | None:
    """The index's close against its SMA 200 as of ``ts`` (None without enough history)."""
    if index is None:
        return None
    known = index.loc[: pd.Timestamp(ts)]
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


class SignalTrader:
    """Stores signals and turns them into orders through one broker."""

    def __init__(self, broker: Broker, feed: StoredBarFeed) -> None:
        self.broker = broker
        self.feed = feed

    def store_signal(
        self, runner: Runner, symbol: str, kind: str, reason: str, frame: pd.DataFrame, ts: datetime
    ) -> tuple[TradeSignal, dict[str, Any], Decimal]:
        snapshot = runner.impl.indicator_snapshot(frame, len(frame) - 1)
        close = price_decimal(frame["close"].iat[-1])
        stock = self.feed.stocks[symbol]
        signal_row = TradeSignal(
            strategy=runner.model,
            stock=stock,
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
                strategy=runner.model, stock=stock, timestamp=ts, signal_type=kind
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
        self,
        runner: Runner,
        signals: list[Found],
        phase: str,
        ts: datetime,
        now: datetime,
        book: pipeline.Book | None = None,
    ) -> list[Order]:
        """The ``phase`` ("exit" or "entry") signals of one strategy, in symbol order;
        ``now`` is the engine's clock (the bar's close)."""
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
                stock=self.feed.stocks[symbol],
                signal_type=kind,
                bar_time=ts,
                close=close,
                now=now,
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
                    "index": index_trend(self.feed.index, ts),
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
