"""The admins of stored backtests and sweeps (imported, and so registered, by
execution/admin.py: the admin autodiscovers only an app's top-level admin module)."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from config.admin_utils import admin_link, pretty_json
from execution.backtest.models import BacktestRun, SweepRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "strategy_link",
        "strategy_class",
        "timeframe",
        "status",
        "total_return",
        "sharpe",
        "created_at",
        "duration_seconds",
    ]
    list_filter = ["status", "strategy_class", "timeframe"]
    date_hierarchy = "created_at"
    list_select_related = ["strategy"]
    readonly_fields = ["page_link", "metrics_pretty", "settings_pretty", "parameters_pretty"]
    exclude = ["metrics", "settings", "parameters", "equity_curve", "trades"]
    actions = ["compare"]

    @admin.display(description="strategy")
    def strategy_link(self, obj):
        return admin_link(obj.strategy)

    @admin.display(description="return")
    def total_return(self, obj):
        value = (obj.metrics or {}).get("total_return")
        return f"{value * 100:.2f}%" if isinstance(value, int | float) else "—"

    @admin.display(description="Sharpe")
    def sharpe(self, obj):
        value = (obj.metrics or {}).get("sharpe")
        return f"{value:.2f}" if isinstance(value, int | float) else "—"

    @admin.display(description="charts")
    def page_link(self, obj):
        return format_html(
            '<a href="{}?ids={}">equity and drawdown ↗</a>', reverse("backtest-compare"), obj.pk
        )

    @admin.display(description="metrics")
    def metrics_pretty(self, obj):
        return pretty_json(obj.metrics)

    @admin.display(description="settings")
    def settings_pretty(self, obj):
        return pretty_json(obj.settings)

    @admin.display(description="parameters")
    def parameters_pretty(self, obj):
        return pretty_json(obj.parameters)

    @admin.action(description="Compare the selected runs side by side")
    def compare(self, request, queryset):
        ids = "&".join(f"ids={pk}" for pk in queryset.values_list("pk", flat=True)[:6])
        return redirect(f"{reverse('backtest-compare')}?{ids}")


@admin.register(SweepRun)
class SweepRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "strategy_class",
        "timeframe",
        "rank_by",
        "points",
        "best",
        "created_at",
        "duration_seconds",
    ]
    list_filter = ["strategy_class", "timeframe", "rank_by"]
    date_hierarchy = "created_at"
    readonly_fields = ["grid_pretty", "results_table", "settings_pretty"]
    exclude = ["grid", "results", "settings"]

    @admin.display(description="points")
    def points(self, obj):
        return len(obj.results or [])

    @admin.display(description="best parameters")
    def best(self, obj):
        first = (obj.results or [None])[0]
        return str(first.get("parameters", first))[:80] if isinstance(first, dict) else "—"

    @admin.display(description="grid")
    def grid_pretty(self, obj):
        return pretty_json(obj.grid)

    @admin.display(description="settings")
    def settings_pretty(self, obj):
        return pretty_json(obj.settings)

    @admin.display(description="results (best first)")
    def results_table(self, obj):
        return pretty_json((obj.results or [])[:50])
