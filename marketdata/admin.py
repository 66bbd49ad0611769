from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.admin_utils import changelist_link, pretty_json
from marketdata.models import Bar, Indicator, Stock


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "exchange", "currency", "active", "related", "updated_at"]
    list_filter = ["active", "exchange", "currency"]
    search_fields = ["symbol", "name"]
    list_editable = ["active"]

    def related_links(self, obj) -> list[str]:
        """The "records" column; a higher app's admin subclass adds its own links."""
        return [
            format_html('<a href="{}">chart ↗</a>', reverse("stock-detail", args=[obj.symbol])),
            changelist_link(Bar, "bars", stock__id__exact=obj.pk),
        ]

    @admin.display(description="records")
    def related(self, obj):
        links = self.related_links(obj)
        return format_html(" · ".join(["{}"] * len(links)), *links)


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
