"""Pages and the health endpoint."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from trading.health import health_report


@never_cache
@require_GET
def health(request):
    report, status = health_report()
    return JsonResponse(report, status=status)
