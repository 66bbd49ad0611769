"""A strategy's risk profile: sizing, stops, targets, protections and costs, as plain data.

``strategies`` owns this vocabulary and validates it (``Strategy.clean()`` through
:mod:`strategies.validation`); ``execution`` applies it: the sizing, cost and stop code
implements the names defined here (the numbers are the codes its compiled loops read),
the backtester runs on a profile (``execution.backtest.settings.BacktestSettings`` adds
the loop's parameter vector) and live risk reads its protections from one.

:meth:`RiskProfile.from_strategy` builds the profile of a Strategy row: its risk fields
plus the keys of ``Strategy.risk_settings``. Every key of ``risk_settings`` must be
known: a profile key (:data:`RISK_SETTING_KEYS`) or a live risk limit
(:data:`LIVE_RISK_SETTING_KEYS`); any other key is refused with the closest known one,
because a misspelt limit (``max_positon_pct``) would otherwise be silently off.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings

if TYPE_CHECKING:  # pragma: no cover
    from strategies.models import Strategy

# The vocabulary: name -> the code execution's compiled functions read. The codes are
# compiled into numba's on-disk cache as constants; never renumber them.
SIZING_METHODS = {"fixed_fraction": 0, "fixed_risk": 1}
STOP_TYPES = {"none": 0, "percent": 1, "atr": 2}
TARGET_TYPES = {"none": 0, "percent": 1, "atr": 2, "r_multiple": 3}
COMMISSION_MODELS = {"none": 0, "per_share": 1, "percent": 2}

# Keys of Strategy.risk_settings that feed the profile (the backtester reads them all).
RISK_SETTING_KEYS = {
    "initial_cash": float,
    "commission": str,
    "commission_per_share": float,
    "commission_minimum": float,
    "commission_maximum_pct": float,
    "commission_percent": float,
    "slippage_bps": float,
    "atr_length": int,
    "cooldown_bars": int,
    "stoploss_guard_limit": int,
    "stoploss_guard_window": int,
    "stoploss_guard_pause": int,
    "max_drawdown": float,
    "max_drawdown_window": int,
    "max_drawdown_pause": int,
}

# Keys of Strategy.risk_settings that only the live pre-trade checks read
# (execution.risk.check_entry; docs/execution.md has the table).
LIVE_RISK_SETTING_KEYS = frozenset(
    {
        "trading_hours",
        "max_orders_per_minute",
        "max_daily_loss",
        "allow_multiple_positions",
        "max_position_shares",
        "max_position_pct",
    }
)

KNOWN_RISK_SETTING_KEYS = frozenset(RISK_SETTING_KEYS) | LIVE_RISK_SETTING_KEYS

_KIND_NAMES = {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "a string"}


class SettingsError(ValueError):
    """An invalid risk profile; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _is_kind(value: Any, kind: str) -> bool:
    """Whether a JSON value fits a profile field annotated ``kind`` (bool is not a number)."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    return isinstance(value, int | float) and value == value  # no NaN


def _default_cash() -> float:
    return float(getattr(django_settings, "PAPER_STARTING_CASH", 100000))


@dataclass(frozen=True)
class CostModel:
    """Commission and slippage settings. Defaults: the IBKR fixed schedule, 1 bp slippage.

    per_share: USD 0.005 a share, at least USD 1.00, at most 1% of the trade value.
    percent: ``percent`` of the trade value (0.001 = 0.1 %).
    """

    commission: str = "per_share"
    per_share: float = 0.005
    minimum: float = 1.00
    maximum_pct: float = 0.01
    percent: float = 0.0
    slippage_bps: float = 1.0

    def __post_init__(self):
        if self.commission not in COMMISSION_MODELS:
            raise ValueError(
                f"commission must be one of {', '.join(COMMISSION_MODELS)}, got {self.commission!r}"
            )
        for name in ("per_share", "minimum", "maximum_pct", "percent", "slippage_bps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @property
    def code(self) -> int:
        return COMMISSION_MODELS[self.commission]

    def as_args(self) -> tuple[int, float, float, float, float]:
        """The model's code and numbers, the positional arguments of
        ``execution.costs.commission_for`` after quantity and price."""
        return (self.code, self.per_share, self.minimum, self.maximum_pct, self.percent)


@dataclass(frozen=True)
class RiskProfile:
    """Everything besides the strategy and the bars that decides a strategy's trades.

    Percent values (``stop_value`` and ``target_value`` with type ``percent``) are in
    percent: 2.0 means 2 %. Fractions (``position_fraction``, ``risk_per_trade``,
    ``max_drawdown``) are fractions: 0.1 means 10 %. Windows and pauses are in bars.
    """

    initial_cash: float = field(default_factory=_default_cash)
    costs: CostModel = field(default_factory=CostModel)
    sizing_method: str = "fixed_fraction"
    position_fraction: float = 0.10
    risk_per_trade: float = 0.01
    fractional_shares: bool = False
    stop_type: str = "none"
    stop_value: float = 0.0
    target_type: str = "none"
    target_value: float = 0.0
    atr_length: int = 14
    max_open_positions: int = 5
    allow_short: bool = False
    cooldown_bars: int = 0
    stoploss_guard_limit: int = 0
    stoploss_guard_window: int = 0
    stoploss_guard_pause: int = 0
    max_drawdown: float = 0.0
    max_drawdown_window: int = 0
    max_drawdown_pause: int = 0

    def __post_init__(self):
        errors = self.errors()
        if errors:
            raise SettingsError(errors)

    def errors(self) -> dict[str, str]:
        """Field -> message for every invalid value (empty when all are valid)."""
        e: dict[str, str] = {}
        if not self.initial_cash > 0:
            e["initial_cash"] = f"must be positive, got {self.initial_cash}"
        if self.sizing_method not in SIZING_METHODS:
            e["sizing_method"] = f"must be one of {', '.join(SIZING_METHODS)}, got {self.sizing_method!r}"
        for name in ("position_fraction", "risk_per_trade"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                e[name] = f"must be a fraction in (0, 1], got {value}"
        if self.stop_type not in STOP_TYPES:
            e["stop_type"] = f"must be one of {', '.join(STOP_TYPES)}, got {self.stop_type!r}"
        if self.target_type not in TARGET_TYPES:
            e["target_type"] = f"must be one of {', '.join(TARGET_TYPES)}, got {self.target_type!r}"
        for name, kind in (("stop_value", self.stop_type), ("target_value", self.target_type)):
            value = getattr(self, name)
            if kind != "none" and not value > 0:
                e[name] = f"must be positive with {kind} levels, got {value}"
        if self.stop_type == "percent" and self.stop_value >= 100:
            e["stop_value"] = f"a percent stop must be below 100, got {self.stop_value}"
        if self.target_type == "r_multiple" and self.stop_type == "none":
            e["target_type"] = "an R-multiple target needs a stop-loss"
        if self.sizing_method == "fixed_risk" and self.stop_type == "none":
            e["sizing_method"] = "fixed risk sizing needs a stop-loss"
        if self.atr_length < 1:
            e["atr_length"] = f"must be at least 1, got {self.atr_length}"
        if self.max_open_positions < 1:
            e["max_open_positions"] = f"must be at least 1, got {self.max_open_positions}"
        for name in (
            "cooldown_bars",
            "stoploss_guard_limit",
            "stoploss_guard_window",
            "stoploss_guard_pause",
            "max_drawdown_window",
            "max_drawdown_pause",
        ):
            if getattr(self, name) < 0:
                e[name] = f"must not be negative, got {getattr(self, name)}"
        if not 0 <= self.max_drawdown < 1:
            e["max_drawdown"] = f"must be a fraction in [0, 1), got {self.max_drawdown}"
        return e

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_strategy(cls, strategy: Strategy, **overrides: Any) -> RiskProfile:
        """The profile of a Strategy row: its risk fields plus the profile keys of
        ``risk_settings`` (see ``RISK_SETTING_KEYS``); ``overrides`` win. An unknown key of
        ``risk_settings`` raises SettingsError."""
        extra = parse_risk_settings(strategy.risk_settings or {})
        cost_fields = {
            "commission": extra.pop("commission", None),
            "per_share": extra.pop("commission_per_share", None),
            "minimum": extra.pop("commission_minimum", None),
            "maximum_pct": extra.pop("commission_maximum_pct", None),
            "percent": extra.pop("commission_percent", None),
            "slippage_bps": extra.pop("slippage_bps", None),
        }
        costs = CostModel(**{k: v for k, v in cost_fields.items() if v is not None})
        values: dict[str, Any] = {
            "costs": costs,
            "sizing_method": strategy.sizing_method,
            "position_fraction": float(strategy.position_fraction),
            "risk_per_trade": float(strategy.risk_per_trade),
            "fractional_shares": bool(strategy.fractional_shares),
            "stop_type": strategy.stop_loss_type,
            "stop_value": float(strategy.stop_loss_value),
            "target_type": strategy.take_profit_type,
            "target_value": float(strategy.take_profit_value),
            "max_open_positions": int(strategy.max_open_positions),
            "allow_short": bool(strategy.allow_short),
            **extra,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskProfile:
        """The inverse of :meth:`to_dict`; unknown keys and bad values raise SettingsError."""
        data = dict(data)
        errors: dict[str, str] = {}
        costs = data.pop("costs", None)
        if costs is not None:
            try:
                data["costs"] = CostModel(**costs) if isinstance(costs, dict) else costs
            except (TypeError, ValueError) as exc:
                errors["costs"] = str(exc)
        kinds = {f.name: f.type for f in fields(cls) if f.name != "costs"}
        for key, value in data.items():
            if key == "costs":
                continue
            kind = kinds.get(key)
            if kind is None:
                errors[key] = "unknown setting"
            elif not _is_kind(value, kind):
                errors[key] = f"expected {_KIND_NAMES[kind]}, got {value!r}"
            elif kind == "float":
                data[key] = float(value)
        if errors:
            raise SettingsError(errors)
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - guarded by the checks above
            raise SettingsError({"settings": str(exc)}) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> RiskProfile:
        return replace(self, **changes)

    @property
    def needs_atr(self) -> bool:
        return self.stop_type == "atr" or self.target_type == "atr"


def unknown_key_message(key: str) -> str:
    """Why a ``risk_settings`` key nobody reads is refused, with the closest known key
    (the caller names the key itself)."""
    close = difflib.get_close_matches(key, sorted(KNOWN_RISK_SETTING_KEYS), n=1)
    known = ", ".join(sorted(KNOWN_RISK_SETTING_KEYS))
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {known}"
    return f"unknown setting (it would have no effect); {hint}"


def parse_risk_settings(risk_settings: dict[str, Any]) -> dict[str, Any]:
    """The profile keys of ``Strategy.risk_settings``, type-checked; SettingsError per key.

    Live risk keys (:data:`LIVE_RISK_SETTING_KEYS`) are left to the live checks; any other
    key is an error.
    """
    if not isinstance(risk_settings, dict):
        raise SettingsError({"risk_settings": "expected a JSON object"})
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in risk_settings:
        if key not in KNOWN_RISK_SETTING_KEYS:
            errors[f"risk_settings.{key}"] = unknown_key_message(str(key))
    for key, kind in RISK_SETTING_KEYS.items():
        if key not in risk_settings:
            continue
        value = risk_settings[key]
        if isinstance(value, Decimal):
            value = float(value)
        if kind is str:
            ok = isinstance(value, str)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            errors[f"risk_settings.{key}"] = f"expected {'a whole number' if kind is int else kind.__name__}"
            continue
        out[key] = kind(value)
    if errors:
        raise SettingsError(errors)
    return out
