"""The indicator catalogue: pandas-ta functions behind validated parameters and stable names.

A strategy (or the API, or ``compute_indicators``) asks for an :class:`IndicatorSpec`
such as ``IndicatorSpec.of("sma", length=10)``; :func:`compute` returns its columns
under stable names (``sma_10``; multi-output indicators add a suffix:
``macd_12_26_9_signal``). Everything here is causal: the value at bar t uses bars up to t.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandas_ta as ta


class IndicatorError(ValueError):
    """An unknown indicator or invalid parameters; the message names which and why."""


@dataclass(frozen=True)
class Param:
    type: type
    default: Any
    min: float | None = None
    max: float | None = None

    def clean(self, indicator: str, name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise IndicatorError(f"{indicator}.{name}: expected a number, got {value!r}")
        try:
            # "20" and "2.5" from a command line: parse as a number first, so that an
            # int parameter given "2.5" is reported as "not a whole number".
            cleaned = self.type(float(value) if isinstance(value, str) and self.type is int else value)
        except (TypeError, ValueError, OverflowError):
            raise IndicatorError(f"{indicator}.{name}: expected a number, got {value!r}") from None
        if self.type is int and float(value) != cleaned:
            raise IndicatorError(f"{indicator}.{name}: expected a whole number, got {value!r}")
        if self.min is not None and cleaned < self.min:
            raise IndicatorError(f"{indicator}.{name}: must be >= {self.min}, got {value!r}")
        if self.max is not None and cleaned > self.max:
            raise IndicatorError(f"{indicator}.{name}: must be <= {self.max}, got {value!r}")
        return cleaned


@dataclass(frozen=True)
class IndicatorDef:
    name: str
    title: str
    params: dict[str, Param]
    # suffixes of the output columns in order; "" is the primary output
    outputs: tuple[str, ...]
    compute: Callable[..., pd.DataFrame | pd.Series]
    warmup: Callable[..., int]
    overlay: bool = False  # drawn on the price chart (vs. its own pane)
    description: str = ""


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator with concrete, validated parameters."""

    name: str
    params: tuple[tuple[str, Any], ...] = field(default=())

    @classmethod
    def of(cls, name: str, **params: Any) -> IndicatorSpec:
        definition = get(name)
        cleaned = validate_params(name, params)
        return cls(name, tuple((k, cleaned[k]) for k in definition.params))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def key(self) -> str:
        """Stable column prefix, e.g. ``sma_10`` or ``bbands_20_2.0``."""
        return "_".join([self.name, *(str(v) for _, v in self.params)])

    @property
    def params_key(self) -> str:
        """Canonical ``k=v,k=v`` string used for uniqueness in the ``indicators`` table."""
        return ",".join(f"{k}={v}" for k, v in self.params)

    @property
    def columns(self) -> list[str]:
        return [self.key + (f"_{s}" if s else "") for s in get(self.name).outputs]

    @property
    def warmup(self) -> int:
        return get(self.name).warmup(**self.kwargs)

    def __str__(self) -> str:
        return f"{self.name.upper()}({', '.join(str(v) for _, v in self.params)})"


def _frame(*series: pd.Series) -> pd.DataFrame:
    return pd.concat(series, axis=1)


CATALOGUE: dict[str, IndicatorDef] = {}


def _register(definition: IndicatorDef) -> None:
    CATALOGUE[definition.name] = definition


_register(
    IndicatorDef(
        "sma",
        "Simple moving average",
        {"length": Param(int, 20, 1, 5000)},
        ("",),
        lambda f, length: ta.sma(f["close"], length=length),
        lambda length: length,
        overlay=True,
    )
)
_register(
    IndicatorDef(
        "ema",
        "Exponential moving average",
        {"length": Param(int, 20, 1, 5000)},
        ("",),
        lambda f, length: ta.ema(f["close"], length=length),
        # EMA depends on where it starts; after ~10 lengths the start's weight is < 0.01 %.
        lambda length: 10 * length,
        overlay=True,
    )
)
_register(
    IndicatorDef(
        "rsi",
        "Relative strength index",
        {"length": Param(int, 14, 2, 1000)},
        ("",),
        lambda f, length: ta.rsi(f["close"], length=length),
        lambda length: 10 * length,
    )
)
_register(
    IndicatorDef(
        "macd",
        "MACD",
        {"fast": Param(int, 12, 1, 1000), "slow": Param(int, 26, 2, 2000), "signal": Param(int, 9, 1, 1000)},
        ("", "hist", "signal"),
        lambda f, fast, slow, signal: ta.macd(f["close"], fast=fast, slow=slow, signal=signal),
        lambda fast, slow, signal: 10 * (slow + signal),
    )
)
_register(
    IndicatorDef(
        "bbands",
        "Bollinger Bands",
        {"length": Param(int, 20, 2, 5000), "std": Param(float, 2.0, 0.1, 10)},
        ("lower", "mid", "upper", "bandwidth", "percent"),
        lambda f, length, std: ta.bbands(f["close"], length=length, lower_std=std, upper_std=std),
        lambda length, std: length,
        overlay=True,
    )
)
_register(
    IndicatorDef(
        "atr",
        "Average true range",
        {"length": Param(int, 14, 1, 1000)},
        ("",),
        lambda f, length: ta.atr(f["high"], f["low"], f["close"], length=length),
        lambda length: 10 * length,
    )
)
_register(
    IndicatorDef(
        "stoch",
        "Stochastic oscillator",
        {"k": Param(int, 14, 1, 1000), "d": Param(int, 3, 1, 100), "smooth_k": Param(int, 3, 1, 100)},
        ("k", "d"),
        lambda f, k, d, smooth_k: ta.stoch(f["high"], f["low"], f["close"], k=k, d=d, smooth_k=smooth_k).iloc[
            :, :2
        ],
        lambda k, d, smooth_k: k + d + smooth_k,
    )
)
_register(
    IndicatorDef(
        "adx",
        "Average directional index",
        {"length": Param(int, 14, 2, 1000)},
        ("", "dmp", "dmn"),
        lambda f, length: ta.adx(f["high"], f["low"], f["close"], length=length)[
            [f"ADX_{length}", f"DMP_{length}", f"DMN_{length}"]
        ],
        lambda length: 20 * length,
    )
)
_register(
    IndicatorDef(
        "obv",
        "On-balance volume",
        {},
        ("",),
        lambda f: ta.obv(f["close"], f["volume"]),
        lambda: 1,
    )
)
_register(
    IndicatorDef(
        "vwap",
        "Volume-weighted average price (session anchored)",
        {},
        ("",),
        lambda f: ta.vwap(f["high"], f["low"], f["close"], f["volume"], anchor="D"),
        lambda: 1,
        overlay=True,
    )
)
_register(
    IndicatorDef(
        "donchian",
        "Donchian channel",
        {"lower_length": Param(int, 20, 1, 5000), "upper_length": Param(int, 20, 1, 5000)},
        ("lower", "mid", "upper"),
        lambda f, lower_length, upper_length: ta.donchian(
            f["high"], f["low"], lower_length=lower_length, upper_length=upper_length
        ),
        lambda lower_length, upper_length: max(lower_length, upper_length),
        overlay=True,
    )
)


# Indicators that, in their usual form, put information from later bars on an earlier one.
# They are refused by name so that nobody adds them to a strategy by accident.
LOOKAHEAD = {
    "dpo": "the centred detrended price oscillator shifts prices back by length/2 + 1 bars",
    "ichimoku": "its lagging span (chikou) is today's close plotted 26 bars in the past",
    "zigzag": "a pivot is only confirmed by later bars but is drawn at the pivot bar",
}


def get(name: str) -> IndicatorDef:
    if name in LOOKAHEAD:
        raise IndicatorError(f"{name} is refused: it looks into the future ({LOOKAHEAD[name]})")
    try:
        return CATALOGUE[name]
    except KeyError:
        raise IndicatorError(
            f"unknown indicator {name!r}; available: {', '.join(sorted(CATALOGUE))}"
        ) from None


def validate_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked; unknown parameters are an error."""
    definition = get(name)
    unknown = set(params) - set(definition.params)
    if unknown:
        raise IndicatorError(
            f"{name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(definition.params) or 'none'}"
        )
    return {
        key: param.clean(name, key, params.get(key, param.default))
        for key, param in definition.params.items()
    }


def parse_spec(text: str) -> IndicatorSpec:
    """``"sma"``, ``"sma:length=50"`` or ``"macd:fast=8,slow=21,signal=5"`` as a spec."""
    name, _, rest = text.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise IndicatorError(f"{text!r}: expected name:key=value[,key=value], got {item!r}")
        params[key.strip()] = value.strip()
    return IndicatorSpec.of(name.strip().lower(), **params)


def compute_one(frame: pd.DataFrame, spec: IndicatorSpec) -> pd.DataFrame:
    """The columns of one indicator over ``frame`` (float64, NaN during warm-up)."""
    result = get(spec.name).compute(frame, **spec.kwargs)
    columns = spec.columns
    if result is None:  # pandas-ta returns None when there are too few rows
        return pd.DataFrame(float("nan"), index=frame.index, columns=columns)
    if isinstance(result, pd.Series):
        result = result.to_frame()
    result = result.astype("float64")
    result.columns = columns
    return result.reindex(frame.index)


def compute(frame: pd.DataFrame, specs: Iterable[IndicatorSpec]) -> pd.DataFrame:
    """``frame`` with the columns of every spec added, each indicator computed once."""
    seen: dict[str, IndicatorSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key, spec)
    missing = [s for k, s in seen.items() if s.columns[0] not in frame.columns]
    if not missing:
        return frame
    parts = [compute_one(frame, spec) for spec in missing]
    return pd.concat([frame, *parts], axis=1)
