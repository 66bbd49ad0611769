from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from marketdata.models import Bar, Indicator, Stock
from trading.admin_utils import changelist_link, pretty_json


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "exchange", "currency", "active", "related", "updated_at"]
    list_filter = ["active", "exchange", "currency"]
    search_fields = ["symbol", "name"]
    list_editable = ["active"]

    @admin.display(description="records")
    def related(self, obj):
        from execution.models import Trade

        return format_html(
            '<a href="{}">chart ↗</a> · {} · {}',
            reverse("stock-detail", args=[obj.symbol]),
            changelist_link(Bar, "bars", stock__id__exact=obj.pk),
            changelist_link(Trade, "trades", stock__id__exact=obj.pk),
        )


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
