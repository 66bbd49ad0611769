from django.contrib import admin

from execution.models import Fill, Order, Trade
from trading.admin_utils import pretty_json


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
        "strategy",
        "stock",
        "purpose",
        "side",
        "order_type",
        "quantity",
        "status",
        "filled_quantity",
        "avg_fill_price",
    ]
    list_filter = ["status", "side", "order_type", "purpose", "broker", "strategy"]
    search_fields = ["client_order_id", "broker_order_id", "stock__symbol"]
    date_hierarchy = "created_at"
    list_select_related = ["strategy", "stock"]
    inlines = [FillInline]
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
    ]


@admin.register(Fill)
class FillAdmin(admin.ModelAdmin):
    list_display = ["execution_id", "timestamp", "order", "quantity", "price", "commission"]
    search_fields = ["execution_id", "order__client_order_id"]
    date_hierarchy = "timestamp"
    list_select_related = ["order"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "entry_time",
        "strategy",
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
    readonly_fields = ["signal_reasons", "market_context_pretty"]
    exclude = ["market_context"]

    @admin.display(description="signal reasons")
    def signal_reasons(self, obj):
        return pretty_json(obj.signal.reasons if obj.signal else None)

    @admin.display(description="market context")
    def market_context_pretty(self, obj):
        return pretty_json(obj.market_context)
