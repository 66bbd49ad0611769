from django.contrib import admin

from marketdata.models import Bar, Indicator, Stock
from trading.admin_utils import pretty_json


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "exchange", "currency", "active", "updated_at"]
    list_filter = ["active", "exchange", "currency"]
    search_fields = ["symbol", "name"]
    list_editable = ["active"]


@admin.register(Bar)
class BarAdmin(admin.ModelAdmin):
    list_display = ["stock", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]
    list_filter = ["timeframe", "stock"]
    search_fields = ["stock__symbol"]
    date_hierarchy = "timestamp"
    list_select_related = ["stock"]
    show_full_result_count = False  # counting millions of bars on every page is slow


@admin.register(Indicator)
class IndicatorAdmin(admin.ModelAdmin):
    list_display = ["stock", "timeframe", "timestamp", "name", "params_key", "value"]
    list_filter = ["name", "timeframe"]
    search_fields = ["stock__symbol", "name"]
    date_hierarchy = "timestamp"
    list_select_related = ["stock"]
    readonly_fields = ["values_pretty", "metadata_pretty"]
    exclude = ["values", "metadata"]
    show_full_result_count = False

    @admin.display(description="values")
    def values_pretty(self, obj):
        return pretty_json(obj.values)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)
