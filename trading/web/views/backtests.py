"""The backtest list, the side-by-side comparison, and a run's page (the comparison of one)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from execution.models import BacktestRun
from trading.web.forms import BacktestFilterForm
from trading.web.presenters import backtest_chart, metric_rows
from trading.web.selectors.backtests import backtests, backtests_by_ids
from trading.web.views.helpers import page_of, querystring_without_page


@login_required
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    form = BacktestFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    qs = backtests(
        strategy_id=data["strategy"].pk if data.get("strategy") else None, status=data.get("status") or ""
    )
    return render(
        request,
        "trading/backtest_list.html",
        {"form": form, "page": page_of(request, qs), "query": querystring_without_page(request)},
    )


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.GET.getlist("ids") if i.isdigit()]
    runs = backtests_by_ids(ids)
    return render(
        request,
        "trading/backtest_compare.html",
        {
            "runs": runs,
            "rows": metric_rows(runs),
            "curves": [
                {"id": r.pk, "label": f"#{r.pk} {r.strategy_class}", "points": backtest_chart(r)}
                for r in runs
            ],
        },
    )


@login_required
@require_GET
def backtest_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(BacktestRun, pk=pk)
    return redirect(f"{reverse('backtest-compare')}?ids={run.pk}")
