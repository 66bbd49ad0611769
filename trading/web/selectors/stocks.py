"""Charts: a stock's page (candles, indicators, trade markers) and the chart around a trade."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from django.db.models import Q
from django.utils import timezone

from execution.models import Trade
from marketdata import indicators as catalogue
from marketdata.models import Bar, Stock
from marketdata.selectors import bars_frame
from trading.web.presenters import epoch, finite_float, trade_markers


def default_timeframe(stock: Stock) -> str:
    """The timeframe with the most recent bar for this stock (daily if it has none)."""
    bar = Bar.objects.filter(stock=stock).order_by("-timestamp").only("timeframe").first()
    return bar.timeframe if bar else "1day"


def stock_timeframes(stock: Stock) -> list[str]:
    return sorted(Bar.objects.filter(stock=stock).order_by().values_list("timeframe", flat=True).distinct())


def candles(
    stock: Stock,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """The bars as a DataFrame (newest ``limit`` of the window), oldest first."""
    frame = bars_frame(stock, timeframe, start, end)
    return frame.iloc[-limit:] if limit else frame


def chart_payload(
    stock: Stock,
    timeframe: str,
    indicator_names: Iterable[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    trades: Iterable[Trade] | None = None,
) -> dict[str, Any]:
    """Candles, indicator series and trade markers for the chart scripts.

    Indicators are computed over extra history before the window so that the first
    visible value is already warmed up.
    """
    specs = []
    for name in indicator_names:
        try:
            specs.append(catalogue.IndicatorSpec.of(name))
        except catalogue.IndicatorError:
            continue  # an unknown name in the query string is ignored, not a 500
    warmup = max((s.warmup for s in specs), default=0)
    frame = candles(stock, timeframe, start, end, limit=limit + warmup if limit else 0)
    if specs and len(frame):
        frame = catalogue.compute(frame, specs)
    frame = frame.iloc[-limit:] if limit else frame
    times = [epoch(ts.to_pydatetime()) for ts in frame.index]
    bars = [
        {"time": t, "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in zip(
            times,
            frame["open"].tolist(),
            frame["high"].tolist(),
            frame["low"].tolist(),
            frame["close"].tolist(),
            frame["volume"].tolist(),
            strict=True,
        )
    ]
    series = []
    for spec in specs:
        definition = catalogue.get(spec.name)
        for column in spec.columns:
            if column.endswith(("_bandwidth", "_percent")):
                continue  # not in price units; a separate pane would be needed
            values = frame[column].tolist()
            points = [
                {"time": t, "value": v}
                for t, v in zip(times, values, strict=True)
                if finite_float(v) is not None
            ]
            series.append(
                {"name": column, "label": str(spec), "overlay": definition.overlay, "points": points}
            )
    markers = trade_markers(trades if trades is not None else [], times[0] if times else None)
    return {
        "symbol": stock.symbol,
        "timeframe": timeframe,
        "bars": bars,
        "series": series,
        "markers": markers,
    }


def stock_trades_in_window(stock: Stock, start_time: int | None) -> list[Trade]:
    qs = Trade.objects.filter(stock=stock).select_related("strategy")
    if start_time is not None:
        qs = qs.filter(
            Q(exit_time__isnull=True) | Q(exit_time__gte=datetime.fromtimestamp(start_time, tz=UTC))
        )
    return list(qs.order_by("entry_time")[:500])


def trade_chart(trade: Trade, context_bars: int = 60) -> dict[str, Any]:
    """The chart around one trade: bars from before the entry to after the exit."""
    timeframe = trade.strategy.timeframe if trade.strategy else default_timeframe(trade.stock)
    end = trade.exit_time or timezone.now()
    before = bars_frame(trade.stock, timeframe, None, trade.entry_time)
    start = before.index[-context_bars].to_pydatetime() if len(before) >= context_bars else None
    after = Bar.objects.filter(stock=trade.stock, timeframe=timeframe, timestamp__gt=end).order_by(
        "timestamp"
    )
    last_after = after.values_list("timestamp", flat=True)[context_bars // 3 : context_bars // 3 + 1]
    window_end = last_after[0] if last_after else None
    return chart_payload(trade.stock, timeframe, ["sma"], start, window_end, limit=0, trades=[trade])
