from django.contrib import admin

from trading.admin_utils import pretty_json
from trading.models import EngineHeartbeat


@admin.register(EngineHeartbeat)
class EngineHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["engine_id", "hostname", "pid", "broker", "state", "started_at", "last_beat"]
    readonly_fields = ["details_pretty"]
    exclude = ["details"]

    @admin.display(description="details")
    def details_pretty(self, obj):
        return pretty_json(obj.details)
