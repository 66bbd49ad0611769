"""Finds strategy classes: the built-in library plus modules named in STRATEGY_MODULES."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from django.conf import settings

import strategies.library as library
from strategies.base import Strategy


class UnknownStrategy(LookupError):
    pass


def _strategies_in(module) -> list[type[Strategy]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Strategy)
        and obj is not Strategy
        and not inspect.isabstract(obj)
        and getattr(obj, "key", None)
    ]


@cache
def _load() -> dict[str, type[Strategy]]:
    modules = [
        importlib.import_module(f"{library.__name__}.{info.name}")
        for info in pkgutil.iter_modules(library.__path__)
    ]
    modules += [importlib.import_module(path) for path in settings.STRATEGY_MODULES]
    found: dict[str, type[Strategy]] = {}
    for module in modules:
        for cls in _strategies_in(module):
            if cls.key in found and found[cls.key] is not cls:
                raise ImportError(f"two strategies use the key {cls.key!r}: {found[cls.key]} and {cls}")
            found[cls.key] = cls
    return found


def all_strategies() -> dict[str, type[Strategy]]:
    return dict(sorted(_load().items()))


def get_strategy(key: str) -> type[Strategy]:
    try:
        return _load()[key]
    except KeyError:
        raise UnknownStrategy(
            f"unknown strategy {key!r}; available: {', '.join(sorted(_load())) or 'none'}"
        ) from None


def reload() -> None:
    """Forget the cached registry (tests and STRATEGY_MODULES changes)."""
    _load.cache_clear()
