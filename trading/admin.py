from django.contrib import admin

from config.admin_utils import pretty_json
from trading.models import AlertRule, EngineHeartbeat


@admin.register(EngineHeartbeat)
class EngineHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["engine_id", "hostname", "pid", "broker", "state", "started_at", "last_beat"]
    readonly_fields = ["details_pretty"]
    exclude = ["details"]

    @admin.display(description="details")
    def details_pretty(self, obj):
        return pretty_json(obj.details)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "channel", "target", "types", "enabled"]
    list_filter = ["channel", "enabled"]
    search_fields = ["name", "target", "user__username"]
    list_select_related = ["user"]
    actions = ["enable", "disable"]

    @admin.display(description="event types")
    def types(self, obj):
        return ", ".join(obj.event_types or [])

    @admin.action(description="Enable the selected rules")
    def enable(self, request, queryset):
        queryset.update(enabled=True)

    @admin.action(description="Disable the selected rules")
    def disable(self, request, queryset):
        queryset.update(enabled=False)
