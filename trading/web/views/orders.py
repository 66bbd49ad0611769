"""The order list and cancelling an order."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from execution.models import Order
from trading import actions
from trading.permissions import is_trader
from trading.web.forms import OrderFilterForm
from trading.web.selectors.orders import orders
from trading.web.views.helpers import (
    next_url,
    page_of,
    querystring_without_page,
    require_trader,
    run_action,
)


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    qs = orders(
        status=data.get("status") or "",
        strategy_id=data["strategy"].pk if data.get("strategy") else None,
        symbol=(data.get("symbol") or "").strip(),
    )
    return render(
        request,
        "trading/order_list.html",
        {
            "form": form,
            "page": page_of(request, qs),
            "query": querystring_without_page(request),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    require_trader(request)
    order = get_object_or_404(Order, pk=pk)
    run_action(request, lambda *, user: actions.cancel_order(order, user=user), ok="Cancel requested.")
    return redirect(next_url(request, reverse("orders")))
