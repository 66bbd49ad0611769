"""The strategy list and a strategy's page: settings form, activation, backtest."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from strategies.models import Strategy
from trading import actions
from trading.permissions import is_trader
from trading.web.forms import StrategyForm
from trading.web.presenters import backtest_chart, metric_rows, strategy_state
from trading.web.selectors.events import latest_events
from trading.web.selectors.strategies import latest_backtest, latest_signals, strategies_with_state
from trading.web.views.helpers import require_trader, run_action


@login_required
@require_GET
def strategy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/strategy_list.html", {"strategies": strategies_with_state()})


@login_required
@require_http_methods(["GET", "POST"])
def strategy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = get_object_or_404(Strategy.objects.prefetch_related("stocks"), pk=pk)
    form = StrategyForm(instance=strategy)
    if request.method == "POST":
        require_trader(request)
        form = StrategyForm(request.POST, instance=strategy)
        if form.is_valid():
            try:
                actions.save_strategy(form, user=request.user)
            except ValidationError:
                pass  # the errors are on the form
            else:
                messages.success(request, "Strategy saved.")
                return redirect("strategy-detail", pk=strategy.pk)
        messages.error(request, "Please correct the errors below.")
    latest = latest_backtest(strategy)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "trading/strategy_detail.html",
        {
            "strategy": strategy,
            "state": strategy_state(strategy),
            "form": form,
            "signals": latest_signals(30, strategy),
            "trades": strategy.trades.select_related("stock").order_by("-entry_time")[:30],
            "events": latest_events(30, strategy),
            "backtest": latest,
            "backtest_equity": backtest_chart(latest) if latest else [],
            "metric_rows": metric_rows([latest]) if latest else [],
            "can_trade": is_trader(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def strategy_activation(request: HttpRequest, pk: int) -> HttpResponse:
    require_trader(request)
    strategy = get_object_or_404(Strategy, pk=pk)
    active = request.POST.get("active") == "1"
    run_action(
        request,
        lambda *, user: actions.set_strategy_active(strategy, active, user=user),
        ok=f"{strategy.name} {'activated' if active else 'deactivated'}.",
    )
    return redirect("strategy-detail", pk=pk)


@login_required
@require_POST
def strategy_backtest(request: HttpRequest, pk: int) -> HttpResponse:
    require_trader(request)
    strategy = get_object_or_404(Strategy, pk=pk)
    try:
        run = actions.start_backtest(strategy, user=request.user)
    except ValueError as exc:  # bad settings for a backtest: tell the trader why
        messages.error(request, f"Backtest not started: {exc}")
    else:
        messages.success(request, f"Backtest #{getattr(run, 'pk', '?')} started.")
    return redirect(reverse("strategy-detail", args=[pk]) + "#backtest-card")
