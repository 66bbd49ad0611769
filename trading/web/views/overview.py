"""The overview page and the kill switch it carries."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from execution.selectors import open_positions
from strategies.models import Strategy
from trading import actions
from trading.permissions import is_trader
from trading.web.presenters import with_drawdown
from trading.web.selectors.events import latest_events
from trading.web.selectors.overview import account_summary, engine, equity_history, global_kill_switch
from trading.web.selectors.strategies import latest_signals, strategies_with_state
from trading.web.views.helpers import int_or_404, next_url, require_trader, run_action


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    positions = open_positions()
    return render(
        request,
        "trading/overview.html",
        {
            "account": account_summary(positions),
            "engine": engine(),
            "positions": positions,
            "position_symbols": sorted({p.symbol for p in positions}),
            "strategies": strategies_with_state(),
            "kill_switch": global_kill_switch(),
            "signals": latest_signals(20),
            "events": latest_events(30),
            "equity_curve": with_drawdown(equity_history()),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Global (no strategy) or per-strategy kill switch: ``enabled`` is "1" or "0"."""
    require_trader(request)
    enabled = request.POST.get("enabled") == "1"
    strategy = None
    if request.POST.get("strategy"):
        strategy = get_object_or_404(Strategy, pk=int_or_404(request.POST["strategy"]))
    scope = strategy.name if strategy else "all strategies"
    run_action(
        request,
        lambda *, user: actions.set_kill_switch(enabled, strategy=strategy, user=user),
        ok=f"Kill switch {'on' if enabled else 'off'} for {scope}.",
    )
    return redirect(next_url(request, reverse("overview")))
