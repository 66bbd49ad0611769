"""Execution's admins, plus the Stock and Strategy admins re-registered with the links and
actions that need execution (one module: the admin autodiscovers only this one)."""

from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.admin_utils import (
    admin_link,
    changelist_link,
    csv_response,
    html_table,
    pretty_json,
    run_for_each,
)
from execution import engine_commands
from execution.backtest import admin as backtest_admin  # noqa: F401  (registers the backtest admins)
from execution.backtest import tasks as backtest_tasks
from execution.models import (
    BacktestRun,
    EngineCommand,
    EquitySnapshot,
    ExecutionState,
    Fill,
    Order,
    PaperAccount,
    PaperOrder,
    PaperPosition,
    Protection,
    Trade,
)
from execution.reports import trade_story, trades_csv_rows
from marketdata import admin as marketdata_admin
from marketdata.models import Stock
from strategies import admin as strategies_admin
from strategies.models import Strategy


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    readonly_fields = ["execution_id", "timestamp", "quantity", "price", "commission"]

    def has_add_permission(self, request, obj=None):
        return False


class OrderInline(admin.TabularInline):
    model = Order
    fk_name = "trade"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "client_order_id",
        "purpose",
        "side",
        "order_type",
        "quantity",
        "status",
        "filled_quantity",
        "avg_fill_price",
        "commission",
        "submitted_at",
        "filled_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "client_order_id",
        "created_at",
        "strategy_link",
        "stock",
        "purpose",
        "side",
        "order_type",
        "quantity",
        "status",
        "filled_quantity",
        "avg_fill_price",
        "trade_link",
    ]
    list_filter = ["status", "side", "order_type", "purpose", "broker", "strategy"]
    search_fields = ["client_order_id", "broker_order_id", "stock__symbol"]
    date_hierarchy = "created_at"
    list_select_related = ["strategy", "stock", "trade"]
    inlines = [FillInline]
    actions = ["cancel_orders"]
    raw_id_fields = ["signal", "trade", "parent"]
    # Status and fills change only through the state machine, never by hand.
    readonly_fields = [
        "client_order_id",
        "broker_order_id",
        "broker_session_order_id",
        "status",
        "filled_quantity",
        "avg_fill_price",
        "commission",
        "submitted_at",
        "filled_at",
        "cancelled_at",
        "reject_reason",
        "links",
    ]

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, obj):
        return admin_link(obj.strategy)

    @admin.display(description="trade")
    def trade_link(self, obj):
        return admin_link(obj.trade, f"#{obj.trade_id}") if obj.trade_id else "—"

    @admin.display(description="related")
    def links(self, obj):
        parts = [
            ("strategy", admin_link(obj.strategy)),
            ("signal", admin_link(obj.signal)),
            ("trade", admin_link(obj.trade)),
            ("parent", admin_link(obj.parent)),
        ]
        return format_html_join(" · ", "{}: {}", parts)

    @admin.action(description="Cancel the selected orders (the engine carries it out)")
    def cancel_orders(self, request, queryset):
        run_for_each(self, request, queryset, engine_commands.request_cancel_order, "Cancel requested")


@admin.register(Fill)
class FillAdmin(admin.ModelAdmin):
    list_display = ["execution_id", "timestamp", "order_link", "quantity", "price", "commission"]
    search_fields = ["execution_id", "order__client_order_id"]
    date_hierarchy = "timestamp"
    list_select_related = ["order"]

    @admin.display(description="order")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.client_order_id)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "entry_time",
        "strategy_link",
        "stock",
        "direction",
        "status",
        "quantity",
        "entry_price",
        "exit_price",
        "realized_pnl",
        "r_multiple",
        "exit_reason",
    ]
    list_filter = ["status", "direction", "exit_reason", "strategy", "stock"]
    search_fields = ["stock__symbol", "strategy__name", "notes"]
    date_hierarchy = "entry_time"
    list_select_related = ["strategy", "stock"]
    inlines = [OrderInline]
    actions = ["close_trades", "export_csv"]
    raw_id_fields = ["signal"]
    readonly_fields = [
        "story_links",
        "signal_reasons",
        "indicator_values",
        "market_context_pretty",
        "timeline",
        "orders_and_fills",
    ]
    exclude = ["market_context"]
    fieldsets = [
        (
            "Trade",
            {
                "fields": [
                    "story_links",
                    ("strategy", "stock", "signal"),
                    ("direction", "status"),
                    ("entry_time", "entry_price", "quantity"),
                    ("exit_time", "exit_price", "exit_reason"),
                    ("stop_loss", "take_profit", "risk_amount"),
                    ("realized_pnl", "realized_pnl_pct", "fees", "r_multiple"),
                    ("mae", "mfe"),
                    "notes",
                ]
            },
        ),
        ("Why: the signal", {"fields": ["signal_reasons", "indicator_values"]}),
        ("Market context at entry", {"fields": ["market_context_pretty"]}),
        ("Orders and fills", {"fields": ["timeline", "orders_and_fills"]}),
    ]

    def _story(self, obj):
        cache = getattr(self, "_story_cache", {})
        if obj.pk not in cache:
            cache = {obj.pk: trade_story(obj)}
            self._story_cache = cache
        return cache[obj.pk]

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, obj):
        return admin_link(obj.strategy)

    @admin.display(description="see also")
    def story_links(self, obj):
        if obj.pk is None:
            return "—"
        return format_html(
            '<a href="{}">trade page with chart ↗</a> · {} · {}',
            reverse("trade-detail", args=[obj.pk]),
            admin_link(obj.strategy),
            admin_link(obj.signal, "signal"),
        )

    @admin.display(description="signal reasons")
    def signal_reasons(self, obj):
        reasons = self._story(obj).reasons
        if not reasons:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((r,) for r in reasons)))

    @admin.display(description="indicator values")
    def indicator_values(self, obj):
        values = self._story(obj).indicator_values
        return html_table(["indicator", "value"], sorted(values.items())) if values else "—"

    @admin.display(description="market context")
    def market_context_pretty(self, obj):
        return pretty_json(obj.market_context)

    @admin.display(description="timeline")
    def timeline(self, obj):
        items = self._story(obj).timeline
        if not items:
            return "—"
        return html_table(
            ["time", "what", "detail"],
            [(f"{i.time:%Y-%m-%d %H:%M:%S}", i.title, i.detail) for i in items],
        )

    @admin.display(description="orders")
    def orders_and_fills(self, obj):
        orders = self._story(obj).orders
        if not orders:
            return "—"
        rows = []
        for o in orders:
            fills = ", ".join(f"{f.quantity} @ {f.price}" for f in o.fills.all()) or "—"
            rows.append((admin_link(o, o.client_order_id), o.purpose, o.side, o.quantity, o.status, fills))
        return html_table(["order", "purpose", "side", "qty", "status", "fills"], rows)

    @admin.action(description="Close the selected trades now (the engine sends the exit)")
    def close_trades(self, request, queryset):
        run_for_each(self, request, queryset, engine_commands.request_close_trade, "Close requested")

    @admin.action(description="Export the selected trades to CSV")
    def export_csv(self, request, queryset):
        return csv_response(trades_csv_rows(queryset.select_related("strategy", "stock")), "trades")


@admin.register(Protection)
class ProtectionAdmin(admin.ModelAdmin):
    list_display = ["kind", "strategy", "stock", "reason", "created_at", "expires_at"]
    list_filter = ["kind", "strategy"]
    search_fields = ["reason"]
    list_select_related = ["strategy", "stock"]


@admin.register(EngineCommand)
class EngineCommandAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "status",
        "order",
        "trade",
        "strategy",
        "requested_by",
        "processed_at",
    ]
    list_filter = ["kind", "status"]
    readonly_fields = [
        "kind",
        "order",
        "trade",
        "strategy",
        "requested_by",
        "status",
        "result",
        "processed_at",
    ]

    def has_add_permission(self, request):
        return False  # commands come from the pages, the API and the admin actions


@admin.register(ExecutionState)
class ExecutionStateAdmin(admin.ModelAdmin):
    list_display = ["key", "updated_at"]
    readonly_fields = ["value_pretty"]

    @admin.display(description="value")
    def value_pretty(self, obj):
        return pretty_json(obj.value)


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "equity", "cash", "positions_value", "unrealized_pnl", "open_positions"]
    date_hierarchy = "timestamp"
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False


class PaperPositionInline(admin.TabularInline):
    model = PaperPosition
    extra = 0


@admin.register(PaperAccount)
class PaperAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "cash", "starting_cash", "updated_at"]
    inlines = [PaperPositionInline]
    exclude = ["last_bars"]


@admin.register(PaperOrder)
class PaperOrderAdmin(admin.ModelAdmin):
    list_display = [
        "broker_order_id",
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "quantity",
        "status",
    ]
    list_filter = ["status", "side", "order_type"]
    search_fields = ["client_order_id", "broker_order_id", "symbol"]

    def has_change_permission(self, request, obj=None):
        return False


# --- the lower apps' admins, with the links and actions that need execution ---------------
# A lower app never imports a higher one, so the cross-links to orders and trades (and
# the kill switch, an engine command) are added here: the lower admin is registered first
# (INSTALLED_APPS order, and the imports above), then replaced by this subclass.


class StockAdmin(marketdata_admin.StockAdmin):
    def related_links(self, obj) -> list[str]:
        return [*super().related_links(obj), changelist_link(Trade, "trades", stock__id__exact=obj.pk)]


class StrategyAdmin(strategies_admin.StrategyAdmin):
    # the lower admin's columns, with the trades count before the page link
    list_display = [
        column
        for name in strategies_admin.StrategyAdmin.list_display
        for column in (("trades_link", name) if name == "page_link" else (name,))
    ]
    actions = ["activate", "deactivate", "kill_switch_on", "kill_switch_off", "run_backtest"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_trades=Count("trades"))

    @admin.display(description="trades", ordering="n_trades")
    def trades_link(self, obj):
        return changelist_link(Trade, str(obj.n_trades), strategy__id__exact=obj.pk)

    def related_links(self, obj) -> list[str]:
        signals, *rest, page = super().related_links(obj)
        return [
            signals,
            changelist_link(Order, "orders", strategy__id__exact=obj.pk),
            changelist_link(Trade, "trades", strategy__id__exact=obj.pk),
            *rest,
            changelist_link(BacktestRun, "backtests", strategy__id__exact=obj.pk),
            page,
        ]

    @admin.action(description="Run a backtest of each")
    def run_backtest(self, request, queryset):
        run_for_each(
            self, request, queryset, lambda s, user: backtest_tasks.start_backtest(s), "Backtests started"
        )

    @admin.action(description="Kill switch ON (cancel open orders, block new ones)")
    def kill_switch_on(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda s, user: engine_commands.set_kill_switch(True, strategy=s, user=user),
            "Kill switch on",
        )

    @admin.action(description="Kill switch OFF")
    def kill_switch_off(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda s, user: engine_commands.set_kill_switch(False, strategy=s, user=user),
            "Kill switch off",
        )


for _model, _model_admin in ((Stock, StockAdmin), (Strategy, StrategyAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)
