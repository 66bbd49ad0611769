"""Request glue shared by the page views: permission, redirects, paging, flash messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from trading import actions
from trading.permissions import is_trader

PAGE_SIZE = 50


def require_trader(request: HttpRequest) -> None:
    if not is_trader(request.user):
        raise PermissionDenied("Only traders may change anything.")


def next_url(request: HttpRequest, default: str) -> str:
    """Where to go after a form: the posted ``next`` if it stays on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def int_or_404(value: str) -> int:
    """A primary key from a form field; anything else is a missing object, not a 500."""
    if not value.isdigit():
        raise Http404("no such object")
    return int(value)


def page_of(request: HttpRequest, queryset: QuerySet, size: int = PAGE_SIZE) -> Page:
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def querystring_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def run_action(request: HttpRequest, action: Callable[..., Any], *args: Any, ok: str) -> None:
    """Run a write and turn its outcome into a flash message (never a 500)."""
    try:
        action(*args, user=request.user)
    except actions.ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, ok)
