"""The live engine package: :class:`Engine` (core), strategy locks, and the run_trader command."""

from trading.engine.core import Engine, EngineOptions

__all__ = ["Engine", "EngineOptions"]
