"""The trade list (with its CSV download), a trade's page, and closing a trade."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.admin_utils import csv_text
from execution.models import Trade
from execution.reports import trade_story, trades_csv_rows
from trading import actions
from trading.permissions import is_trader
from trading.web.forms import TradeFilterForm
from trading.web.selectors.stocks import trade_chart
from trading.web.selectors.trades import TradeFilters, filtered_trades, trade_totals
from trading.web.views.helpers import (
    next_url,
    page_of,
    querystring_without_page,
    require_trader,
    run_action,
)


def _trade_filters(form: TradeFilterForm) -> TradeFilters:
    data = form.cleaned_data if form.is_valid() else {}
    strategy = data.get("strategy")
    return TradeFilters(
        strategy=strategy.pk if strategy else None,
        symbol=(data.get("symbol") or "").strip(),
        start=data.get("start"),
        end=data.get("end"),
        outcome=data.get("outcome") or "",
    )


@login_required
@require_GET
def trade_list(request: HttpRequest) -> HttpResponse:
    form = TradeFilterForm(request.GET or None)
    qs = filtered_trades(_trade_filters(form))
    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(csv_text(trades_csv_rows(qs)), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="trades-{stamp}.csv"'
        return response
    return render(
        request,
        "trading/trade_list.html",
        {
            "form": form,
            "page": page_of(request, qs),
            "totals": trade_totals(qs),
            "query": querystring_without_page(request),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_GET
def trade_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trade = get_object_or_404(Trade.objects.select_related("strategy", "stock", "signal"), pk=pk)
    return render(
        request,
        "trading/trade_detail.html",
        {
            "story": trade_story(trade),
            "trade": trade,
            "chart": trade_chart(trade),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def trade_close(request: HttpRequest, pk: int) -> HttpResponse:
    require_trader(request)
    trade = get_object_or_404(Trade, pk=pk)
    run_action(request, lambda *, user: actions.request_close(trade, user=user), ok="Close requested.")
    return redirect(next_url(request, reverse("trade-detail", args=[pk])))
