"""Shared admin helpers for every app's admin: pretty read-only JSON, links between records,
CSV export, and admin actions applied row by row.

A leaf module: it imports no app (an import-linter contract in pyproject.toml says so), so
the lowest app's admin may use it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join


def pretty_json(value) -> str:
    """Render a JSON value as an indented, escaped <pre> block."""
    if value in (None, {}, []):
        return "—"
    return format_html(
        '<pre style="white-space:pre-wrap;margin:0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str),
    )


def admin_url(obj: Model) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def admin_link(obj: Model | None, text: str | None = None) -> str:
    """A link to ``obj``'s admin page (— when there is none)."""
    if obj is None:
        return "—"
    try:
        return format_html('<a href="{}">{}</a>', admin_url(obj), text or str(obj))
    except NoReverseMatch:
        return str(text or obj)


def changelist_link(model: type[Model], text: str, **filters: Any) -> str:
    """A link to ``model``'s admin list filtered by ``filters`` (e.g. strategy__id__exact=3)."""
    meta = model._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


def html_table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows),
    )
    return format_html(
        '<table style="width:100%"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body
    )


def csv_text(rows: Iterable[list[Any]]) -> Iterable[str]:
    """Each row rendered as one CSV line (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)


def csv_response(rows: Iterable[list[Any]], name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_text(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.now():%Y%m%d-%H%M}.csv"'
    return response


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    action: Callable[..., Any],
    done: str,
) -> None:
    """Apply ``action(obj, user=...)`` to each selected row; report successes and refusals.

    A refusal is the service's "this makes no sense" error: a ``ValueError`` (such as
    ``execution.engine_commands.CommandError``) or a ``ValidationError`` (its messages)."""
    ok = 0
    for obj in queryset:
        try:
            action(obj, user=request.user)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{obj}: {'; '.join(exc.messages)}", messages.WARNING)
        except ValueError as exc:
            modeladmin.message_user(request, f"{obj}: {exc}", messages.WARNING)
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, f"{done}: {ok}.", messages.SUCCESS)
