"""The signed-in user's own alert rules: list, add, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from trading.models import AlertRule
from trading.web.forms import AlertRuleForm
from trading.web.views.helpers import int_or_404


@login_required
@require_http_methods(["GET", "POST"])
def alert_rules(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own alert rules: list, add, delete."""
    rules = AlertRule.objects.filter(user=request.user)
    form = AlertRuleForm()
    status = 200
    if request.method == "POST":
        if request.POST.get("delete"):
            get_object_or_404(rules, pk=int_or_404(request.POST["delete"])).delete()
            messages.success(request, "Alert rule deleted.")
            return redirect("alerts")
        form = AlertRuleForm(request.POST, instance=AlertRule(user=request.user))
        if form.is_valid():
            form.save()
            messages.success(request, "Alert rule added.")
            return redirect("alerts")
        status = 400
    return render(request, "trading/alerts.html", {"rules": rules, "form": form}, status=status)
