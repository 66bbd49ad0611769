"""SMA crossover: the classic trend follower."""

from strategies.base import IntParam
from strategies.library._crossover import MovingAverageCrossover


class SmaCrossover(MovingAverageCrossover):
    """Enter long when the fast SMA crosses above the slow SMA; exit when it crosses below.
    With shorting allowed, the mirror image opens and closes shorts."""

    key = "sma_crossover"
    name = "SMA crossover"
    average = "sma"
    parameters = {
        "fast": IntParam(10, 2, 500, "fast SMA length (bars)"),
        "slow": IntParam(30, 3, 2000, "slow SMA length (bars)"),
    }
