from django.contrib import admin

from strategies.models import BacktestRun, Strategy, StrategyEvent, TradeSignal
from trading.admin_utils import pretty_json


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["name", "strategy_class", "timeframe", "active", "kill_switch", "updated_at"]
    list_filter = ["active", "kill_switch", "strategy_class", "timeframe"]
    search_fields = ["name", "description", "strategy_class"]
    filter_horizontal = ["stocks"]
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
    ]


@admin.register(TradeSignal)
class TradeSignalAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "strategy", "stock", "signal_type", "price", "executed"]
    list_filter = ["signal_type", "executed", "strategy"]
    search_fields = ["stock__symbol", "strategy__name"]
    date_hierarchy = "timestamp"
    list_select_related = ["strategy", "stock"]
    readonly_fields = ["reasons_pretty", "indicator_values_pretty", "created_at"]
    exclude = ["reasons", "indicator_values"]

    @admin.display(description="reasons")
    def reasons_pretty(self, obj):
        return pretty_json(obj.reasons)

    @admin.display(description="indicator values")
    def indicator_values_pretty(self, obj):
        return pretty_json(obj.indicator_values)


@admin.register(StrategyEvent)
class StrategyEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "severity", "event_type", "strategy", "message"]
    list_filter = ["severity", "event_type", "strategy"]
    search_fields = ["message", "event_type"]
    date_hierarchy = "created_at"
    list_select_related = ["strategy"]
    readonly_fields = ["strategy", "event_type", "severity", "message", "metadata_pretty", "created_at"]
    exclude = ["metadata"]

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)

    def has_add_permission(self, request):
        return False  # the journal records what happened; nobody writes it by hand

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "strategy_class", "timeframe", "status", "created_at", "duration_seconds"]
    list_filter = ["status", "strategy_class", "timeframe"]
    date_hierarchy = "created_at"
    readonly_fields = ["metrics_pretty", "settings_pretty", "parameters_pretty"]
    exclude = ["metrics", "settings", "parameters", "equity_curve", "trades"]

    @admin.display(description="metrics")
    def metrics_pretty(self, obj):
        return pretty_json(obj.metrics)

    @admin.display(description="settings")
    def settings_pretty(self, obj):
        return pretty_json(obj.settings)

    @admin.display(description="parameters")
    def parameters_pretty(self, obj):
        return pretty_json(obj.parameters)
