"""The stock list and a stock's page (chart with indicators and trade markers)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from execution.models import Trade
from marketdata import indicators as catalogue
from marketdata.models import Stock
from trading.web.presenters import trade_markers
from trading.web.selectors.stocks import (
    chart_payload,
    default_timeframe,
    stock_timeframes,
    stock_trades_in_window,
)


@login_required
@require_GET
def stock_list(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/stock_list.html", {"stocks": Stock.objects.all()})


@login_required
@require_GET
def stock_detail(request: HttpRequest, symbol: str) -> HttpResponse:
    stock = Stock.objects.filter(symbol__iexact=symbol).order_by("exchange").first()
    if stock is None:
        raise Http404(f"Unknown symbol {symbol}")
    timeframes = stock_timeframes(stock)
    timeframe = request.GET.get("tf") or default_timeframe(stock)
    if timeframes and timeframe not in timeframes:
        timeframe = timeframes[0]
    chosen = [name for name in request.GET.getlist("ind") if name in catalogue.CATALOGUE]
    if "ind" not in request.GET:
        chosen = ["sma", "bbands"]
    chart = chart_payload(stock, timeframe, chosen, limit=400)
    first = chart["bars"][0]["time"] if chart["bars"] else None
    chart["markers"] = trade_markers(stock_trades_in_window(stock, first), first)
    return render(
        request,
        "trading/stock_detail.html",
        {
            "stock": stock,
            "timeframe": timeframe,
            "timeframes": timeframes,
            "indicators": [
                {"name": k, "title": d.title, "overlay": d.overlay, "checked": k in chosen}
                for k, d in catalogue.CATALOGUE.items()
            ],
            "chart": chart,
            "latest_bars": list(reversed(chart["bars"][-20:])),
            "trades": Trade.objects.filter(stock=stock)
            .select_related("strategy")
            .order_by("-entry_time")[:20],
        },
    )
