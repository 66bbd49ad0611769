"""Orders (with an explicit state machine), fills and trades; stored backtests and sweeps
live in their own module (``execution.backtest.models``) and are imported here."""

from django.db import models
from django.db.models import Q

from execution.backtest.models import BacktestRun, BacktestStatus, SweepRun  # noqa: F401
from marketdata.models import PRICE, Stock
from strategies.models import Strategy, TradeSignal

QTY = {"max_digits": 20, "decimal_places": 6}
MONEY = {"max_digits": 20, "decimal_places": 6}


class OrderSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP = "stop", "Stop"
    STOP_LIMIT = "stop_limit", "Stop limit"


class TimeInForce(models.TextChoices):
    DAY = "day", "Day"
    GTC = "gtc", "Good till cancelled"


class OrderStatus(models.TextChoices):
    PENDING_SUBMIT = "pending_submit", "Pending submit"
    SUBMITTED = "submitted", "Submitted"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    UNKNOWN = "unknown", "Unknown (outcome lost)"


OPEN_ORDER_STATUSES = (
    OrderStatus.PENDING_SUBMIT,
    OrderStatus.SUBMITTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.UNKNOWN,
)


class OrderPurpose(models.TextChoices):
    ENTRY = "entry", "Entry"
    EXIT = "exit", "Exit"
    STOP_LOSS = "stop_loss", "Stop loss"
    TAKE_PROFIT = "take_profit", "Take profit"


class Order(models.Model):
    """An order as this system knows it.

    ``status`` changes only through ``execution.state`` (the state machine); the row is
    written in ``pending_submit`` before the broker is called.
    """

    client_order_id = models.CharField(max_length=64, unique=True)
    broker = models.CharField(max_length=16, default="paper")
    broker_order_id = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Paper id or IB permId"
    )
    broker_session_order_id = models.BigIntegerField(
        null=True, blank=True, help_text="IB per-session orderId (repeats across sessions)"
    )
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    stock = models.ForeignKey(Stock, on_delete=models.PROTECT, related_name="orders")
    signal = models.ForeignKey(
        TradeSignal, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    trade = models.ForeignKey(
        "Trade", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    purpose = models.CharField(max_length=12, choices=OrderPurpose.choices, default=OrderPurpose.ENTRY)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=10, choices=OrderType.choices, default=OrderType.MARKET)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.DAY)
    quantity = models.DecimalField(**QTY)
    limit_price = models.DecimalField(**PRICE, null=True, blank=True)
    stop_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_SUBMIT)
    filled_quantity = models.DecimalField(**QTY, default=0)
    avg_fill_price = models.DecimalField(**PRICE, null=True, blank=True)
    commission = models.DecimalField(**MONEY, default=0)
    reject_reason = models.TextField(blank=True)
    # What the pipeline knew when it decided: signal bar, ATR, market context, reasons.
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=models.F("quantity")),
                name="order_filled_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(limit_price__isnull=True) | Q(limit_price__gt=0),
                name="order_limit_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(stop_price__isnull=True) | Q(stop_price__gt=0),
                name="order_stop_price_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="order_status_idx"),
            models.Index(fields=["strategy", "stock", "-created_at"], name="order_strat_stock_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.client_order_id} {self.side} {self.quantity} {self.stock_id} [{self.status}]"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES


class Fill(models.Model):
    """One execution; unique on the broker's execution id so no fill counts twice."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    execution_id = models.CharField(max_length=96, unique=True)
    timestamp = models.DateTimeField()
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**PRICE)
    commission = models.DecimalField(**MONEY, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "fills"
        ordering = ["timestamp", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="fill_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} {self.quantity} @ {self.price}"


class TradeDirection(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class TradeStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ExitReason(models.TextChoices):
    SIGNAL = "signal", "Exit signal"
    STOP_LOSS = "stop_loss", "Stop loss"
    TAKE_PROFIT = "take_profit", "Take profit"
    MANUAL = "manual", "Manual close"
    KILL_SWITCH = "kill_switch", "Kill switch"
    RECONCILIATION = "reconciliation", "Reconciliation"
    END_OF_DATA = "end_of_data", "End of data"


class Trade(models.Model):
    """A position from its entry fill to its exit fill, with P&L and the context that led to it."""

    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, null=True, blank=True, related_name="trades"
    )
    stock = models.ForeignKey(Stock, on_delete=models.PROTECT, related_name="trades")
    signal = models.ForeignKey(
        TradeSignal, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    direction = models.CharField(max_length=5, choices=TradeDirection.choices, default=TradeDirection.LONG)
    status = models.CharField(max_length=6, choices=TradeStatus.choices, default=TradeStatus.OPEN)
    entry_time = models.DateTimeField()
    entry_price = models.DecimalField(**PRICE)
    quantity = models.DecimalField(**QTY)
    exit_time = models.DateTimeField(null=True, blank=True)
    exit_price = models.DecimalField(**PRICE, null=True, blank=True)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True)
    stop_loss = models.DecimalField(**PRICE, null=True, blank=True)
    take_profit = models.DecimalField(**PRICE, null=True, blank=True)
    risk_amount = models.DecimalField(**MONEY, null=True, blank=True)
    realized_pnl = models.DecimalField(**MONEY, null=True, blank=True)
    realized_pnl_pct = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    fees = models.DecimalField(**MONEY, default=0)
    r_multiple = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    mae = models.DecimalField(**PRICE, null=True, blank=True, help_text="Max adverse excursion (price)")
    mfe = models.DecimalField(**PRICE, null=True, blank=True, help_text="Max favourable excursion (price)")
    market_context = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trades"
        ordering = ["-entry_time", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(entry_price__gt=0), name="trade_entry_price_positive"),
            models.CheckConstraint(
                condition=Q(exit_price__isnull=True) | Q(exit_price__gt=0),
                name="trade_exit_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | (Q(exit_time__isnull=False) & Q(exit_price__isnull=False)),
                name="trade_closed_has_exit",
            ),
        ]
        indexes = [
            models.Index(fields=["strategy", "stock", "entry_time"], name="trade_strat_stock_entry_idx"),
            models.Index(fields=["strategy", "stock", "exit_time"], name="trade_strat_stock_exit_idx"),
            models.Index(fields=["status", "-entry_time"], name="trade_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.quantity} {self.stock_id} @ {self.entry_price} [{self.status}]"


# --- protections, commands, engine state, equity -----------------------------------------


class ProtectionKind(models.TextChoices):
    COOLDOWN = "cooldown", "Cooldown after an exit"
    STOPLOSS_STREAK = "stoploss_streak", "Stop-loss streak"
    MAX_DRAWDOWN = "max_drawdown", "Max drawdown"
    DAILY_LOSS = "daily_loss", "Max daily loss"
    MANUAL = "manual", "Manual lock"


class Protection(models.Model):
    """A lock that blocks new entries until ``expires_at``: for one strategy or all
    (strategy null), for one symbol or all (stock null). Deleting it lifts the lock."""

    strategy = models.ForeignKey(
        Strategy, on_delete=models.CASCADE, null=True, blank=True, related_name="protections"
    )
    stock = models.ForeignKey(
        Stock, on_delete=models.CASCADE, null=True, blank=True, related_name="protections"
    )
    kind = models.CharField(max_length=16, choices=ProtectionKind.choices)
    reason = models.TextField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "protections"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["strategy", "expires_at"], name="protection_strat_exp_idx")]

    def __str__(self) -> str:
        return f"{self.kind} until {self.expires_at:%Y-%m-%d %H:%M}: {self.reason[:60]}"


class EngineCommandKind(models.TextChoices):
    CANCEL_ORDER = "cancel_order", "Cancel order"
    CLOSE_TRADE = "close_trade", "Close trade"
    KILL_SWITCH_ON = "kill_switch_on", "Kill switch on"
    KILL_SWITCH_OFF = "kill_switch_off", "Kill switch off"


class EngineCommandStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EngineCommand(models.Model):
    """A request from a page or the API that only the engine (the broker's one owner) carries out."""

    kind = models.CharField(max_length=16, choices=EngineCommandKind.choices)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    trade = models.ForeignKey(Trade, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=8, choices=EngineCommandStatus.choices, default=EngineCommandStatus.PENDING
    )
    options = models.JSONField(default=dict, blank=True, help_text="e.g. close_positions for the kill switch")
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "engine_commands"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "created_at"], name="engine_command_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} [{self.status}]"


class ExecutionState(models.Model):
    """Small named pieces of durable state: the global kill switch, replay cursors."""

    key = models.CharField(max_length=100, unique=True)
    value = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "execution_state"

    def __str__(self) -> str:
        return self.key


class EquitySnapshot(models.Model):
    """Account equity at a moment (bar close in replay, wall clock live)."""

    timestamp = models.DateTimeField(unique=True)
    equity = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY)
    positions_value = models.DecimalField(**MONEY, default=0)
    unrealized_pnl = models.DecimalField(**MONEY, default=0)
    realized_pnl = models.DecimalField(**MONEY, default=0)
    open_positions = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "equity_snapshots"
        ordering = ["timestamp"]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M} {self.equity}"


# --- the paper broker's own books (what a real broker would hold) ------------------------


class PaperAccount(models.Model):
    name = models.CharField(max_length=32, unique=True)
    starting_cash = models.DecimalField(**MONEY)
    cash = models.DecimalField(**MONEY)
    # symbol -> {"ts": iso, "close": str}: the last bar seen, so orders placed after a bar
    # fill on the next one, also across a restart.
    last_bars = models.JSONField(default=dict, blank=True)
    sequence = models.PositiveBigIntegerField(default=0, help_text="Last broker order / execution number")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "paper_accounts"

    def __str__(self) -> str:
        return f"{self.name} cash {self.cash}"


class PaperOrder(models.Model):
    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="orders")
    client_order_id = models.CharField(max_length=64)
    broker_order_id = models.CharField(max_length=64, unique=True)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=10, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices)
    quantity = models.DecimalField(**QTY)
    limit_price = models.DecimalField(**PRICE, null=True, blank=True)
    stop_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    filled_quantity = models.DecimalField(**QTY, default=0)
    avg_fill_price = models.DecimalField(**PRICE, null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    oco_group = models.CharField(max_length=64, blank=True)
    # The order may fill only on bars that open after this one (the last bar seen at submit).
    after_bar = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "paper_orders"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="paper_order_client_uniq")
        ]
        indexes = [models.Index(fields=["account", "symbol", "status"], name="paper_order_working_idx")]

    def __str__(self) -> str:
        return f"{self.broker_order_id} {self.client_order_id} [{self.status}]"


class PaperFill(models.Model):
    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="fills")
    order = models.ForeignKey(PaperOrder, on_delete=models.CASCADE, related_name="fills")
    execution_id = models.CharField(max_length=96, unique=True)
    timestamp = models.DateTimeField()
    quantity = models.DecimalField(**QTY)
    price = models.DecimalField(**PRICE)
    commission = models.DecimalField(**MONEY, default=0)

    class Meta:
        db_table = "paper_fills"
        ordering = ["timestamp", "id"]

    def __str__(self) -> str:
        return f"{self.execution_id} {self.quantity} @ {self.price}"


class PaperPosition(models.Model):
    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=32)
    quantity = models.DecimalField(**QTY, default=0, help_text="Signed: negative is short")
    avg_cost = models.DecimalField(**PRICE, default=0)

    class Meta:
        db_table = "paper_positions"
        constraints = [models.UniqueConstraint(fields=["account", "symbol"], name="paper_position_uniq")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity} @ {self.avg_cost}"
