"""Configured strategies, their signals and the event journal."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from marketdata.models import PRICE, Stock
from marketdata.timeframes import Timeframe
from strategies.validation import strategy_errors


class SizingMethod(models.TextChoices):
    FIXED_FRACTION = "fixed_fraction", "Fixed fraction of equity"
    FIXED_RISK = "fixed_risk", "Fixed risk per trade over the stop distance"


class StopType(models.TextChoices):
    NONE = "none", "None"
    PERCENT = "percent", "Percent of entry price"
    ATR = "atr", "ATR multiple"


class TakeProfitType(models.TextChoices):
    NONE = "none", "None"
    PERCENT = "percent", "Percent of entry price"
    ATR = "atr", "ATR multiple"
    R_MULTIPLE = "r_multiple", "Multiple of the stop distance"


class Strategy(models.Model):
    """A strategy class bound to parameters, a universe, a timeframe and risk settings."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    strategy_class = models.CharField(max_length=64, help_text="Registry key, e.g. sma_crossover")
    parameters = models.JSONField(default=dict, blank=True)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices, default=Timeframe.DAY_1)
    stocks = models.ManyToManyField(Stock, related_name="strategies", blank=True)
    active = models.BooleanField(default=False)
    kill_switch = models.BooleanField(
        default=False, help_text="Blocks new orders for this strategy; open orders are cancelled"
    )
    allow_short = models.BooleanField(default=False)

    # risk settings
    sizing_method = models.CharField(
        max_length=16, choices=SizingMethod.choices, default=SizingMethod.FIXED_FRACTION
    )
    position_fraction = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.10"),
        help_text="Fraction of equity per position (fixed fraction sizing)",
    )
    risk_per_trade = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.01"),
        help_text="Fraction of equity risked per trade (fixed risk sizing)",
    )
    stop_loss_type = models.CharField(max_length=8, choices=StopType.choices, default=StopType.NONE)
    stop_loss_value = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    take_profit_type = models.CharField(
        max_length=10, choices=TakeProfitType.choices, default=TakeProfitType.NONE
    )
    take_profit_value = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    max_open_positions = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    fractional_shares = models.BooleanField(default=False)
    # Further per-strategy risk limits (max position %, daily loss, protections...).
    risk_settings = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strategies"
        ordering = ["name"]
        verbose_name_plural = "strategies"
        constraints = [
            models.CheckConstraint(
                condition=Q(position_fraction__gt=0) & Q(position_fraction__lte=1),
                name="strategy_position_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(risk_per_trade__gt=0) & Q(risk_per_trade__lte=1),
                name="strategy_risk_per_trade_range",
            ),
            models.CheckConstraint(
                condition=Q(stop_loss_value__gte=0) & Q(take_profit_value__gte=0),
                name="strategy_stop_target_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The strategy class exists, its parameters and the risk settings are valid;
        ValidationError with one message per bad field otherwise."""
        errors = strategy_errors(self)
        if errors:
            raise ValidationError(errors)


class SignalType(models.TextChoices):
    ENTRY_LONG = "entry_long", "Entry long"
    EXIT_LONG = "exit_long", "Exit long"
    ENTRY_SHORT = "entry_short", "Entry short"
    EXIT_SHORT = "exit_short", "Exit short"


class TradeSignal(models.Model):
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="signals")
    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="signals")
    timestamp = models.DateTimeField(help_text="Open time of the bar that produced the signal")
    signal_type = models.CharField(max_length=12, choices=SignalType.choices)
    price = models.DecimalField(**PRICE, help_text="Close of the signal bar")
    executed = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, help_text="Readable reasons, one string each")
    indicator_values = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "trade_signals"
        ordering = ["-timestamp", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "stock", "timestamp", "signal_type"], name="signal_uniq"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="signal_price_positive"),
        ]
        indexes = [
            models.Index(fields=["strategy", "stock", "timestamp"], name="signal_strat_stock_ts_idx"),
            models.Index(fields=["-created_at"], name="signal_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_signal_type_display()} {self.stock_id} @ {self.timestamp:%Y-%m-%d %H:%M}"


class Severity(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class StrategyEvent(models.Model):
    """The journal: everything that happened, per strategy or system-wide (strategy null)."""

    strategy = models.ForeignKey(
        Strategy, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    event_type = models.CharField(max_length=48)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "strategy_events"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["strategy", "-created_at"], name="event_strategy_time_idx"),
            models.Index(fields=["severity", "-created_at"], name="event_severity_time_idx"),
            models.Index(fields=["event_type", "-created_at"], name="event_type_time_idx"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.event_type}: {self.message[:60]}"
