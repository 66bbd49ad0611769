"""Small builders for the UI tests: a stock with bars, a strategy, a traded story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from execution.models import BacktestRun, Fill, Order, Trade
from marketdata.models import Bar, Stock
from strategies.models import Strategy, StrategyEvent, TradeSignal

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_stock(symbol: str = "AAPL", bars: int = 80, timeframe: str = "1day") -> Stock:
    stock = Stock.objects.create(symbol=symbol, name=f"{symbol} Inc.", exchange="NASDAQ")
    Bar.objects.bulk_create(
        Bar(
            stock=stock,
            timeframe=timeframe,
            timestamp=T0 + timedelta(days=i),
            open=Decimal(100 + i),
            high=Decimal(102 + i),
            low=Decimal(99 + i),
            close=Decimal(101 + i),
            volume=1000 + i,
        )
        for i in range(bars)
    )
    return stock


def make_strategy(stock: Stock | None = None, name: str = "SMA demo", active: bool = True) -> Strategy:
    strategy = Strategy.objects.create(
        name=name, strategy_class="sma_crossover", parameters={"fast": 10, "slow": 30}, active=active
    )
    if stock is not None:
        strategy.stocks.add(stock)
    return strategy


def make_story(stock: Stock, strategy: Strategy, closed: bool = True, pnl: str = "50") -> Trade:
    """A signal, an entry order with a fill, a trade (closed with an exit order if asked)."""
    n = Trade.objects.count()
    when = T0 + timedelta(days=40 + n)
    signal = TradeSignal.objects.create(
        strategy=strategy,
        stock=stock,
        timestamp=when,
        signal_type="entry_long",
        price=Decimal("141"),
        reasons=["SMA(10) 140.50 crossed above SMA(30) 139.90"],
        indicator_values={"sma_10": 140.5, "sma_30": 139.9},
    )
    trade = Trade.objects.create(
        strategy=strategy,
        stock=stock,
        signal=signal,
        entry_time=when + timedelta(days=1),
        entry_price=Decimal("142"),
        quantity=Decimal("10"),
        market_context={"index_trend": "up", "atr_pct": 1.8, "reasons": signal.reasons},
        status="closed" if closed else "open",
        exit_time=when + timedelta(days=5) if closed else None,
        exit_price=Decimal("147") if closed else None,
        exit_reason="signal" if closed else "",
        realized_pnl=Decimal(pnl) if closed else None,
        fees=Decimal("2"),
    )
    entry = Order.objects.create(
        client_order_id=f"c-{trade.pk}-entry",
        strategy=strategy,
        stock=stock,
        signal=signal,
        trade=trade,
        side="buy",
        quantity=Decimal("10"),
        status="filled",
        filled_quantity=Decimal("10"),
        avg_fill_price=Decimal("142"),
        submitted_at=when + timedelta(days=1),
        filled_at=when + timedelta(days=1),
    )
    Fill.objects.create(
        order=entry,
        execution_id=f"x-{trade.pk}-1",
        timestamp=when + timedelta(days=1),
        quantity=Decimal("10"),
        price=Decimal("142"),
        commission=Decimal("1"),
    )
    if closed:
        Order.objects.create(
            client_order_id=f"c-{trade.pk}-exit",
            strategy=strategy,
            stock=stock,
            trade=trade,
            purpose="exit",
            side="sell",
            quantity=Decimal("10"),
            status="filled",
            filled_quantity=Decimal("10"),
            avg_fill_price=Decimal("147"),
        )
    return trade


def make_open_order(stock: Stock, strategy: Strategy) -> Order:
    return Order.objects.create(
        client_order_id=f"open-{Order.objects.count()}",
        strategy=strategy,
        stock=stock,
        side="buy",
        order_type="limit",
        limit_price=Decimal("100"),
        quantity=Decimal("5"),
        status="submitted",
    )


def make_event(message: str = "hello", severity: str = "info", event_type: str = "engine.started", **kw):
    return StrategyEvent.objects.create(event_type=event_type, severity=severity, message=message, **kw)


def make_backtest(strategy: Strategy | None = None, status: str = "done") -> BacktestRun:
    return BacktestRun.objects.create(
        strategy=strategy,
        strategy_class="sma_crossover",
        parameters={"fast": 10, "slow": 30},
        symbols=["AAPL"],
        timeframe="1day",
        status=status,
        metrics={"total_return": 0.12, "sharpe": 1.3, "max_drawdown": -0.08, "num_trades": 7},
        equity_curve=[
            ["2024-01-01T00:00:00Z", 100000],
            ["2024-01-02T00:00:00Z", 99000],
            [1704326400, 101000],
        ],
    )
