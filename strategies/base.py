"""The strategy interface.

A strategy is a small class in the shape traders know from freqtrade::

    class SmaCrossover(Strategy):
        key = "sma_crossover"
        name = "SMA crossover"
        parameters = {"fast": IntParam(10, 2, 500), "slow": IntParam(30, 3, 2000)}

        def indicators(self):
            return [IndicatorSpec.of("sma", length=self.p["fast"]), ...]

        def signals(self, frame):
            ... return a SignalFrame built from boolean Series and reason Series

``signals(frame)`` receives bars (open/high/low/close/volume, UTC index, closed bars
only) with the indicator columns already added, and must be causal: the row at bar t
may only depend on rows up to t. The backtester calls it once on the whole history, the
live engine on the newest bar, through the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketdata.indicators import IndicatorSpec
from marketdata.indicators import compute as compute_indicators

SIGNAL_COLUMNS = ("entry_long", "exit_long", "entry_short", "exit_short")


class ParameterError(ValueError):
    """Invalid strategy parameters; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, bounds and help text."""

    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def clean(self, value: Any) -> Any:
        """The value converted to ``type``; raises ValueError with a readable message."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {value!r}")
            if self.type is int and float(value) != int(value):
                raise ValueError(f"expected a whole number, got {value!r}")
            value = self.type(value)
            if self.min is not None and value < self.min:
                raise ValueError(f"must be at least {self.min}, got {value}")
            if self.max is not None and value > self.max:
                raise ValueError(f"must be at most {self.max}, got {value}")
        elif self.type is str and not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {list(self.choices)}, got {value!r}")
        return value

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.type.__name__,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices) if self.choices else None,
            "help": self.help,
        }


def IntParam(default: int, min: int | None = None, max: int | None = None, help: str = "") -> Param:  # noqa: N802,A002
    return Param(int, default, min, max, help=help)


def FloatParam(  # noqa: N802
    default: float,
    min: float | None = None,
    max: float | None = None,
    help: str = "",  # noqa: A002
) -> Param:
    return Param(float, default, min, max, help=help)


@dataclass
class SignalFrame:
    """The output of ``Strategy.signals``: one boolean column per signal type and a reason.

    ``reasons`` holds, per row, the readable reason of that row's signal (empty string
    where there is none).
    """

    entry_long: pd.Series
    exit_long: pd.Series
    entry_short: pd.Series
    exit_short: pd.Series
    reasons: pd.Series

    @classmethod
    def empty(cls, index: pd.Index) -> SignalFrame:
        false = pd.Series(False, index=index)
        return cls(false, false.copy(), false.copy(), false.copy(), pd.Series("", index=index))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "entry_long": self.entry_long.fillna(False).astype(bool),
                "exit_long": self.exit_long.fillna(False).astype(bool),
                "entry_short": self.entry_short.fillna(False).astype(bool),
                "exit_short": self.exit_short.fillna(False).astype(bool),
                "reason": _clean_reasons(self.reasons),
            }
        )


def _clean_reasons(reasons: pd.Series) -> pd.Series:
    """Reasons as strings, "" where there is none (cheap when reason_where built them)."""
    if "reason_rows" in reasons.attrs and reasons.dtype == object:
        return reasons
    return reasons.fillna("").astype(str)


class Strategy(ABC):
    """Base class of every strategy. Subclasses set the class attributes and two methods."""

    key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Param]] = {}
    supports_short: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any] | None = None, *, allow_short: bool = False):
        self.p: dict[str, Any] = self.validate_parameters(params or {})
        self.allow_short = allow_short and self.supports_short

    # --- parameters ---------------------------------------------------------------------
    @classmethod
    def validate_parameters(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled in and every field checked; raises ParameterError per field."""
        if not isinstance(params, Mapping):
            raise ParameterError({"parameters": "expected a JSON object"})
        errors: dict[str, str] = {}
        cleaned: dict[str, Any] = {}
        for field in params:
            if field not in cls.parameters:
                errors[field] = f"unknown parameter; expected one of {sorted(cls.parameters)}"
        for field, param in cls.parameters.items():
            try:
                cleaned[field] = param.clean(params.get(field, param.default))
            except ValueError as exc:
                errors[field] = str(exc)
        if not errors:
            errors.update(cls.check_parameters(cleaned))
        if errors:
            raise ParameterError(errors)
        return cleaned

    @classmethod
    def check_parameters(cls, params: dict[str, Any]) -> dict[str, str]:
        """Cross-field rules (e.g. fast < slow); return field -> message."""
        return {}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "key": cls.key,
            "name": cls.name,
            "description": (cls.description or cls.__doc__ or "").strip(),
            "supports_short": cls.supports_short,
            "parameters": {k: v.describe() for k, v in cls.parameters.items()},
        }

    # --- what subclasses implement ------------------------------------------------------
    @abstractmethod
    def indicators(self) -> list[IndicatorSpec]:
        """The indicators ``signals`` reads, computed once per symbol by the caller."""

    @abstractmethod
    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        """Vectorised, causal entry/exit marks with a reason per signal row."""

    # --- shared behaviour ---------------------------------------------------------------
    @property
    def warmup(self) -> int:
        """Bars needed before signals are trustworthy (the longest indicator warm-up)."""
        return max((spec.warmup for spec in self.indicators()), default=0) + 1

    def prepare(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``bars`` with this strategy's indicator columns added."""
        return compute_indicators(bars, self.indicators())

    def run(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Indicators then signals, as one frame: bars, indicators, signal columns, reason.

        Short signals are cleared unless shorting is allowed for this instance.
        """
        frame = self.prepare(bars)
        out = self.signals(frame).to_frame()
        if not self.allow_short:
            out["entry_short"] = False
            out["exit_short"] = False
        return pd.concat([frame, out], axis=1)

    def indicator_snapshot(self, frame: pd.DataFrame, position: int) -> dict[str, float | None]:
        """The values of this strategy's indicator columns at row ``position``."""
        snapshot: dict[str, float | None] = {}
        for spec in self.indicators():
            for column in spec.columns:
                value = frame[column].iat[position]
                snapshot[column] = None if pd.isna(value) else round(float(value), 6)
        return snapshot


def crossed_above(a: pd.Series, b: pd.Series) -> pd.Series:
    """True on bars where ``a`` moves from at-or-below ``b`` to above it."""
    return (a > b) & (a.shift(1) <= b.shift(1))


def crossed_below(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a < b) & (a.shift(1) >= b.shift(1))


def reason_where(mask: pd.Series, template: str, **columns: pd.Series) -> pd.Series:
    """A Series with ``template`` formatted from ``columns`` on rows where ``mask`` is True.

    Only the (few) signal rows are formatted, so this stays fast on long histories; their
    positions are kept in ``attrs["reason_rows"]`` so that :func:`join_reasons` and
    :meth:`SignalFrame.to_frame` need not scan a million empty strings again.
    """
    rows = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
    out = np.full(len(mask), "", dtype=object)
    if len(rows):
        names = list(columns)
        picked = [columns[k].to_numpy()[rows].tolist() for k in names]
        out[rows] = [
            template.format(**dict(zip(names, vals, strict=True))) for vals in zip(*picked, strict=True)
        ]
    series = pd.Series(out, index=mask.index, dtype=object)
    series.attrs["reason_rows"] = rows
    return series


def _reason_rows(reason: pd.Series) -> np.ndarray:
    """Positions of the non-empty reasons (from ``attrs`` when reason_where built it)."""
    rows = reason.attrs.get("reason_rows")
    if rows is not None:
        return rows
    values = reason.to_numpy(dtype=object)
    return np.flatnonzero(pd.notna(values) & (values != ""))


def join_reasons(*reasons: pd.Series) -> pd.Series:
    """Combine reason Series row by row with "; ", skipping empty strings.

    Only rows that carry at least one reason are joined, so this stays fast on long
    histories (a million bars have a few thousand signal rows).
    """
    if not reasons:
        raise ValueError("join_reasons needs at least one Series")
    index = reasons[0].index
    out = np.full(len(index), "", dtype=object)
    taken = np.zeros(len(index), dtype=bool)
    for reason in reasons:
        values = reason.to_numpy(dtype=object)
        rows = _reason_rows(reason)
        if not len(rows):
            continue
        # Signals of different kinds rarely share a bar: assign those rows, join the rest.
        clash = taken[rows]
        fresh = rows[~clash]
        out[fresh] = values[fresh]
        for i in rows[clash]:
            out[i] = f"{out[i]}; {values[i]}"
        taken[rows] = True
    series = pd.Series(out, index=index, dtype=object)
    series.attrs["reason_rows"] = np.flatnonzero(taken)
    return series
