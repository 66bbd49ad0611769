"""EMA crossover: the SMA crossover's faster-reacting sibling."""

from strategies.base import IntParam
from strategies.library._crossover import MovingAverageCrossover


class EmaCrossover(MovingAverageCrossover):
    """Enter long when the fast EMA crosses above the slow EMA; exit when it crosses back
    below. With shorting allowed, the mirror image opens and closes shorts."""

    key = "ema_crossover"
    name = "EMA crossover"
    average = "ema"
    parameters = {
        "fast": IntParam(12, 2, 500, "fast EMA length (bars)"),
        "slow": IntParam(26, 3, 2000, "slow EMA length (bars)"),
    }
