"""The journal page: events filtered by severity, type and strategy."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from trading.web.forms import EventFilterForm
from trading.web.selectors.events import event_types, events
from trading.web.views.helpers import page_of, querystring_without_page


@login_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None, event_types=event_types())
    data = form.cleaned_data if form.is_valid() else {}
    qs = events(
        severity=data.get("severity") or "",
        event_type=data.get("event_type") or "",
        strategy_id=data["strategy"].pk if data.get("strategy") else None,
    )
    return render(
        request,
        "trading/event_list.html",
        {"form": form, "page": page_of(request, qs), "query": querystring_without_page(request)},
    )
