"""Pages and the health endpoint. Reads come from trading.selectors, writes go through
trading.actions (which call the owning app's services); views only glue them to HTTP."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from execution.models import Order, Trade
from marketdata import indicators as catalogue
from marketdata.models import Stock
from strategies.models import BacktestRun, Strategy
from trading import actions, selectors
from trading.forms import (
    AlertRuleForm,
    BacktestFilterForm,
    EventFilterForm,
    OrderFilterForm,
    StrategyForm,
    TradeFilterForm,
)
from trading.health import health_report
from trading.models import AlertRule
from trading.permissions import is_trader

PAGE_SIZE = 50


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    report, status = health_report()
    return JsonResponse(report, status=status)


def _require_trader(request: HttpRequest) -> None:
    if not is_trader(request.user):
        raise PermissionDenied("Only traders may change anything.")


def _next(request: HttpRequest, default: str) -> str:
    """Where to go after a form: the posted ``next`` if it stays on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _int_or_404(value: str) -> int:
    """A primary key from a form field; anything else is a missing object, not a 500."""
    if not value.isdigit():
        raise Http404("no such object")
    return int(value)


def _page(request: HttpRequest, queryset, size: int = PAGE_SIZE):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def _querystring_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _run_action(request: HttpRequest, action, *args, ok: str) -> None:
    """Run a write and turn its outcome into a flash message (never a 500)."""
    try:
        action(*args, user=request.user)
    except actions.ActionRefused as exc:
        messages.error(request, str(exc))
    except actions.ActionUnavailable as exc:
        messages.warning(request, f"Not available yet: {exc}")
    else:
        messages.success(request, ok)


# --- overview -------------------------------------------------------------------------------


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    positions = selectors.open_positions()
    return render(
        request,
        "trading/overview.html",
        {
            "account": selectors.account_summary(positions),
            "engine": selectors.engine(),
            "positions": positions,
            "position_symbols": sorted({p.symbol for p in positions}),
            "strategies": selectors.strategies_with_state(),
            "kill_switch": selectors.global_kill_switch(),
            "signals": selectors.latest_signals(20),
            "events": selectors.latest_events(30),
            "equity_curve": selectors.with_drawdown(selectors.equity_history()),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def kill_switch(request: HttpRequest) -> HttpResponse:
    """Global (no strategy) or per-strategy kill switch: ``enabled`` is "1" or "0"."""
    _require_trader(request)
    enabled = request.POST.get("enabled") == "1"
    strategy = None
    if request.POST.get("strategy"):
        strategy = get_object_or_404(Strategy, pk=_int_or_404(request.POST["strategy"]))
    scope = strategy.name if strategy else "all strategies"
    _run_action(
        request,
        lambda *, user: actions.set_kill_switch(enabled, strategy=strategy, user=user),
        ok=f"Kill switch {'on' if enabled else 'off'} for {scope}.",
    )
    return redirect(_next(request, reverse("overview")))


# --- strategies -----------------------------------------------------------------------------


@login_required
@require_GET
def strategy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "trading/strategy_list.html", {"strategies": selectors.strategies_with_state()})


@login_required
@require_http_methods(["GET", "POST"])
def strategy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    strategy = get_object_or_404(Strategy.objects.prefetch_related("stocks"), pk=pk)
    form = StrategyForm(instance=strategy)
    if request.method == "POST":
        _require_trader(request)
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
    latest = selectors.latest_backtest(strategy)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "trading/strategy_detail.html",
        {
            "strategy": strategy,
            "state": selectors.strategy_state(strategy),
            "form": form,
            "signals": selectors.latest_signals(30, strategy),
            "trades": strategy.trades.select_related("stock").order_by("-entry_time")[:30],
            "events": selectors.latest_events(30, strategy),
            "backtest": latest,
            "backtest_equity": selectors.backtest_chart(latest) if latest else [],
            "metric_rows": selectors.metric_rows([latest]) if latest else [],
            "can_trade": is_trader(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def strategy_activation(request: HttpRequest, pk: int) -> HttpResponse:
    _require_trader(request)
    strategy = get_object_or_404(Strategy, pk=pk)
    active = request.POST.get("active") == "1"
    _run_action(
        request,
        lambda *, user: actions.set_strategy_active(strategy, active, user=user),
        ok=f"{strategy.name} {'activated' if active else 'deactivated'}.",
    )
    return redirect("strategy-detail", pk=pk)


@login_required
@require_POST
def strategy_backtest(request: HttpRequest, pk: int) -> HttpResponse:
    _require_trader(request)
    strategy = get_object_or_404(Strategy, pk=pk)
    try:
        run = actions.start_backtest(strategy, user=request.user)
    except actions.ActionUnavailable as exc:
        messages.warning(request, f"Not available yet: {exc}")
    except ValueError as exc:  # bad settings for a backtest: tell the trader why
        messages.error(request, f"Backtest not started: {exc}")
    else:
        messages.success(request, f"Backtest #{getattr(run, 'pk', '?')} started.")
    return redirect(reverse("strategy-detail", args=[pk]) + "#backtest-card")


# --- stocks ---------------------------------------------------------------------------------


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
    timeframes = selectors.stock_timeframes(stock)
    timeframe = request.GET.get("tf") or selectors.default_timeframe(stock)
    if timeframes and timeframe not in timeframes:
        timeframe = timeframes[0]
    chosen = [name for name in request.GET.getlist("ind") if name in catalogue.CATALOGUE]
    if "ind" not in request.GET:
        chosen = ["sma", "bbands"]
    chart = selectors.chart_payload(stock, timeframe, chosen, limit=400)
    first = chart["bars"][0]["time"] if chart["bars"] else None
    chart["markers"] = selectors.trade_markers(selectors.stock_trades_in_window(stock, first), first)
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


# --- trades ---------------------------------------------------------------------------------


def _trade_filters(form: TradeFilterForm) -> selectors.TradeFilters:
    data = form.cleaned_data if form.is_valid() else {}
    strategy = data.get("strategy")
    return selectors.TradeFilters(
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
    qs = selectors.filtered_trades(_trade_filters(form))
    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(
            selectors.csv_text(selectors.trades_csv_rows(qs)), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="trades-{stamp}.csv"'
        return response
    return render(
        request,
        "trading/trade_list.html",
        {
            "form": form,
            "page": _page(request, qs),
            "totals": selectors.trade_totals(qs),
            "query": _querystring_without_page(request),
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
            "story": selectors.trade_story(trade),
            "trade": trade,
            "chart": selectors.trade_chart(trade),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def trade_close(request: HttpRequest, pk: int) -> HttpResponse:
    _require_trader(request)
    trade = get_object_or_404(Trade, pk=pk)
    _run_action(request, lambda *, user: actions.close_trade(trade, user=user), ok="Close requested.")
    return redirect(_next(request, reverse("trade-detail", args=[pk])))


# --- orders, events -------------------------------------------------------------------------


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    qs = selectors.orders(
        status=data.get("status") or "",
        strategy_id=data["strategy"].pk if data.get("strategy") else None,
        symbol=(data.get("symbol") or "").strip(),
    )
    return render(
        request,
        "trading/order_list.html",
        {
            "form": form,
            "page": _page(request, qs),
            "query": _querystring_without_page(request),
            "can_trade": is_trader(request.user),
        },
    )


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _require_trader(request)
    order = get_object_or_404(Order, pk=pk)
    _run_action(request, lambda *, user: actions.cancel_order(order, user=user), ok="Cancel requested.")
    return redirect(_next(request, reverse("orders")))


@login_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None, event_types=selectors.event_types())
    data = form.cleaned_data if form.is_valid() else {}
    qs = selectors.events(
        severity=data.get("severity") or "",
        event_type=data.get("event_type") or "",
        strategy_id=data["strategy"].pk if data.get("strategy") else None,
    )
    return render(
        request,
        "trading/event_list.html",
        {"form": form, "page": _page(request, qs), "query": _querystring_without_page(request)},
    )


# --- backtests ------------------------------------------------------------------------------


@login_required
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    form = BacktestFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    qs = selectors.backtests(
        strategy_id=data["strategy"].pk if data.get("strategy") else None, status=data.get("status") or ""
    )
    return render(
        request,
        "trading/backtest_list.html",
        {"form": form, "page": _page(request, qs), "query": _querystring_without_page(request)},
    )


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.GET.getlist("ids") if i.isdigit()]
    runs = selectors.backtests_by_ids(ids)
    return render(
        request,
        "trading/backtest_compare.html",
        {
            "runs": runs,
            "rows": selectors.metric_rows(runs),
            "curves": [
                {"id": r.pk, "label": f"#{r.pk} {r.strategy_class}", "points": selectors.backtest_chart(r)}
                for r in runs
            ],
        },
    )


@login_required
@require_GET
def backtest_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(BacktestRun, pk=pk)
    return redirect(f"{reverse('backtest-compare')}?ids={run.pk}")


# --- alerts ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def alert_rules(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own alert rules: list, add, delete."""
    rules = AlertRule.objects.filter(user=request.user)
    form = AlertRuleForm()
    status = 200
    if request.method == "POST":
        if request.POST.get("delete"):
            get_object_or_404(rules, pk=_int_or_404(request.POST["delete"])).delete()
            messages.success(request, "Alert rule deleted.")
            return redirect("alerts")
        form = AlertRuleForm(request.POST, instance=AlertRule(user=request.user))
        if form.is_valid():
            form.save()
            messages.success(request, "Alert rule added.")
            return redirect("alerts")
        status = 400
    return render(request, "trading/alerts.html", {"rules": rules, "form": form}, status=status)
