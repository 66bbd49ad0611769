"""The live engine: loop (Engine, the bar step and what runs between bars), bar_feed (the
bars it steps on and its cursor), evaluator (strategy evaluation on a bar), orders
(signals into orders), heartbeat, strategy_set (the strategies it runs), locks."""

from trading.engine.loop import Engine, EngineOptions

__all__ = ["Engine", "EngineOptions"]
