"""/health: database, channel layer and engine heartbeat as JSON (no sign-in, never cached)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trading.health import health_report


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    report, status = health_report()
    return JsonResponse(report, status=status)
