"""Every endpoint in the OpenAPI schema answers bad input with a 4xx, never a 500.

The schema is the list of what exists, so this covers every app's API as it grows.
"""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from trading.tests.factories import make_backtest, make_open_order, make_stock, make_story, make_strategy

pytestmark = pytest.mark.django_db

BAD_VALUES = ["@@@", "-1", "9" * 30, "2024-13-45", "true false", "[]"]
BAD_BODIES = [
    {},
    {"id": "x", "name": 5, "quantity": "lots", "parameters": "not-an-object", "timestamp": "yesterday"},
    {"symbols": "AAPL", "start": "2024-99-99", "end": 3, "strategy": 999999, "enabled": "maybe"},
    ["a", "list"],
]


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                params = [p for p in op.get("parameters", []) if p.get("in") == "query"]
                yield path, method, params


def _fill(path: str, ids: dict[str, int]) -> list[str]:
    """The path with its {id}s replaced by an existing, a missing and a malformed value."""
    found = re.findall(r"{(\w+)}", path)
    if not found:
        return [path]
    existing = path
    for name in found:
        existing = existing.replace("{" + name + "}", str(ids.get(path.split("/")[2], 1)))
    return [existing, re.sub(r"{\w+}", "999999", path), re.sub(r"{\w+}", "not-an-id", path)]


@pytest.fixture
def world():
    stock = make_stock("AAPL", bars=60)
    strategy = make_strategy(stock)
    trade = make_story(stock, strategy, closed=False)
    order = make_open_order(stock, strategy)
    run = make_backtest(strategy)
    return {
        "strategies": strategy.pk,
        "trades": trade.pk,
        "orders": order.pk,
        "backtests": run.pk,
        "stocks": stock.pk,
    }


def test_no_endpoint_answers_500_to_bad_input(trader, world):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(trader)
    failures = []
    for path, method, params in _operations():
        if path.startswith("/api/token/"):
            continue
        for url in _fill(path, world):
            if method == "get":
                for value in BAD_VALUES:
                    query = {p["name"]: value for p in params}
                    query.setdefault("ordering", value)
                    response = client.get(url, query)
                    if response.status_code >= 500:
                        failures.append(f"GET {url} ?{query} -> {response.status_code}")
            elif method in ("post", "put", "patch"):
                for body in BAD_BODIES:
                    response = getattr(client, method)(url, body, format="json")
                    if response.status_code >= 500:
                        failures.append(f"{method.upper()} {url} {body} -> {response.status_code}")
                    elif response.status_code == 400 and isinstance(body, dict) and body:
                        assert isinstance(response.json(), dict | list), url
                response = client.generic(method.upper(), url, "{not json", content_type="application/json")
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {url} <malformed json> -> {response.status_code}")
    assert not failures, "\n".join(failures)


def test_anonymous_gets_no_data_and_viewers_cannot_write(viewer, world):
    anonymous = APIClient(raise_request_exception=False)
    reader = APIClient(raise_request_exception=False)
    reader.force_authenticate(viewer)
    problems = []
    for path, method, _ in _operations():
        if path.startswith(("/api/token/", "/api/schema")):
            continue
        for url in _fill(path, world)[:1]:
            response = anonymous.generic(method.upper(), url)
            if response.status_code not in (401, 403):
                problems.append(f"anonymous {method.upper()} {url} -> {response.status_code}")
            if method != "get":
                response = reader.generic(method.upper(), url, "{}", content_type="application/json")
                if response.status_code != 403:
                    problems.append(f"viewer {method.upper()} {url} -> {response.status_code}")
    assert not problems, "\n".join(problems)
