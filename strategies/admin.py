from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.admin_utils import admin_link, changelist_link, pretty_json, run_for_each
from strategies import services
from strategies.models import Strategy, StrategyEvent, TradeSignal


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "strategy_class",
        "timeframe",
        "active",
        "kill_switch",
        "symbols",
        "page_link",
        "updated_at",
    ]
    list_filter = ["active", "kill_switch", "strategy_class", "timeframe"]
    search_fields = ["name", "description", "strategy_class"]
    filter_horizontal = ["stocks"]
    readonly_fields = ["related", "created_at", "updated_at"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "description",
                    "strategy_class",
                    "parameters",
                    "timeframe",
                    "stocks",
                    "active",
                    "kill_switch",
                    "allow_short",
                ]
            },
        ),
        (
            "Risk",
            {
                "fields": [
                    "sizing_method",
                    "position_fraction",
                    "risk_per_trade",
                    "stop_loss_type",
                    "stop_loss_value",
                    "take_profit_type",
                    "take_profit_value",
                    "max_open_positions",
                    "fractional_shares",
                    "risk_settings",
                ]
            },
        ),
        ("Related", {"fields": ["related", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stocks")

    @admin.display(description="stocks")
    def symbols(self, obj):
        return ", ".join(s.symbol for s in obj.stocks.all()) or "—"

    @admin.display(description="page")
    def page_link(self, obj):
        return format_html('<a href="{}">open ↗</a>', reverse("strategy-detail", args=[obj.pk]))

    def related_links(self, obj) -> list[str]:
        """The "records" field; a higher app's admin subclass adds its own links."""
        return [
            changelist_link(TradeSignal, "signals", strategy__id__exact=obj.pk),
            changelist_link(StrategyEvent, "events", strategy__id__exact=obj.pk),
            format_html('<a href="{}">trader page ↗</a>', reverse("strategy-detail", args=[obj.pk])),
        ]

    @admin.display(description="records")
    def related(self, obj):
        if obj.pk is None:
            return "—"
        links = self.related_links(obj)
        return format_html(" · ".join(["{}"] * len(links)), *links)

    @admin.action(description="Activate the selected strategies")
    def activate(self, request, queryset):
        run_for_each(self, request, queryset, lambda s, user: services.set_active(s, True), "Activated")

    @admin.action(description="Deactivate the selected strategies")
    def deactivate(self, request, queryset):
        run_for_each(self, request, queryset, lambda s, user: services.set_active(s, False), "Deactivated")


@admin.register(TradeSignal)
class TradeSignalAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "strategy_link", "stock", "signal_type", "price", "executed", "first_reason"]
    list_filter = ["signal_type", "executed", "strategy"]
    search_fields = ["stock__symbol", "strategy__name"]
    date_hierarchy = "timestamp"
    list_select_related = ["strategy", "stock"]
    readonly_fields = ["reasons_pretty", "indicator_values_pretty", "orders_and_trades", "created_at"]
    exclude = ["reasons", "indicator_values"]

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, obj):
        return admin_link(obj.strategy)

    @admin.display(description="reason")
    def first_reason(self, obj):
        return (obj.reasons or [""])[0][:80]

    @admin.display(description="reasons")
    def reasons_pretty(self, obj):
        return pretty_json(obj.reasons)

    @admin.display(description="indicator values")
    def indicator_values_pretty(self, obj):
        return pretty_json(obj.indicator_values)

    @admin.display(description="orders and trades")
    def orders_and_trades(self, obj):
        links = [admin_link(o) for o in obj.orders.all()] + [
            admin_link(t, f"trade #{t.pk}") for t in obj.trades.all()
        ]
        return format_html(" · ".join(["{}"] * len(links)), *links) if links else "—"


@admin.register(StrategyEvent)
class StrategyEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "severity", "event_type", "strategy_link", "message"]
    list_filter = ["severity", "event_type", "strategy"]
    search_fields = ["message", "event_type"]
    date_hierarchy = "created_at"
    list_select_related = ["strategy"]
    readonly_fields = ["strategy", "event_type", "severity", "message", "metadata_pretty", "created_at"]
    exclude = ["metadata"]

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, obj):
        return admin_link(obj.strategy)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)

    def has_add_permission(self, request):
        return False  # the journal records what happened; nobody writes it by hand

    def has_change_permission(self, request, obj=None):
        return False
