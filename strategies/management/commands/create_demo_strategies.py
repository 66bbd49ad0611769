"""manage.py create_demo_strategies: a few active demo strategies over the sample symbols.

`make run` calls it (through bootstrap_demo) after load_sample; running it again changes
nothing. Symbols that are not loaded are skipped.
"""

from django.core.management.base import BaseCommand

from marketdata.models import Stock
from strategies.models import Strategy
from strategies.services import create_strategy, set_active

DEMO_SYMBOLS = ["SPX", "IXIC"]
DEMO_STRATEGIES = [
    {
        "name": "Demo SMA 10/30",
        "description": "Trend following: SMA(10) crossing SMA(30), 5 % stop, 2R target.",
        "strategy_class": "sma_crossover",
        "parameters": {"fast": 10, "slow": 30},
        "stop_loss_type": "percent",
        "stop_loss_value": 5,
        "take_profit_type": "r_multiple",
        "take_profit_value": 2,
        "position_fraction": "0.20",
    },
    {
        "name": "Demo RSI mean reversion",
        "description": "Buy RSI(14) below 30, sell above 50; 2 x ATR stop, risk 1 % per trade.",
        "strategy_class": "rsi_mean_reversion",
        "parameters": {"length": 14, "oversold": 30, "overbought": 70, "exit_level": 50},
        "sizing_method": "fixed_risk",
        "risk_per_trade": "0.01",
        "stop_loss_type": "atr",
        "stop_loss_value": 2,
    },
    {
        "name": "Demo Bollinger reversion",
        "description": "Buy a close below the lower band (20, 2), sell back at the middle; 3 % target.",
        "strategy_class": "bollinger_reversion",
        "parameters": {"length": 20, "std": 2.0},
        "stop_loss_type": "percent",
        "stop_loss_value": 4,
        "take_profit_type": "percent",
        "take_profit_value": 3,
        "risk_settings": {"cooldown_bars": 3},
    },
    {
        "name": "Demo Donchian breakout",
        "description": "Turtle-style: buy a 20-day breakout, exit below the 10-day low; 3 x ATR stop.",
        "strategy_class": "donchian_breakout",
        "parameters": {"entry_length": 20, "exit_length": 10},
        "stop_loss_type": "atr",
        "stop_loss_value": 3,
        "risk_settings": {"stoploss_guard_limit": 3, "stoploss_guard_window": 60, "stoploss_guard_pause": 20},
    },
]


class Command(BaseCommand):
    help = "Create the active demo strategies over the sample symbols (idempotent)."

    def handle(self, *args, **options):
        stocks = list(Stock.objects.filter(symbol__in=DEMO_SYMBOLS).order_by("symbol"))
        if not stocks:
            self.stdout.write("no sample stocks loaded (run load_sample first); no demo strategies created")
            return
        for spec in DEMO_STRATEGIES:
            existing = Strategy.objects.filter(name=spec["name"]).first()
            if existing is not None:
                self.stdout.write(f"demo strategy {existing.name} exists")
                continue
            strategy = create_strategy(stocks=stocks, timeframe="1day", max_open_positions=2, **spec)
            set_active(strategy, True)
            symbols = ", ".join(s.symbol for s in stocks)
            self.stdout.write(
                f"created demo strategy {strategy.name} ({strategy.strategy_class} on {symbols})"
            )
