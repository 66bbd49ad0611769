"""Bar timeframes: the names Twelve Data uses, and their length as a pandas offset."""

import pandas as pd
from django.db import models


class Timeframe(models.TextChoices):
    MIN_1 = "1min", "1 minute"
    MIN_5 = "5min", "5 minutes"
    MIN_15 = "15min", "15 minutes"
    MIN_30 = "30min", "30 minutes"
    MIN_45 = "45min", "45 minutes"
    HOUR_1 = "1h", "1 hour"
    HOUR_2 = "2h", "2 hours"
    HOUR_4 = "4h", "4 hours"
    DAY_1 = "1day", "1 day"
    WEEK_1 = "1week", "1 week"
    MONTH_1 = "1month", "1 month"


_OFFSETS = {
    "1min": "1min",
    "5min": "5min",
    "15min": "15min",
    "30min": "30min",
    "45min": "45min",
    "1h": "1h",
    "2h": "2h",
    "4h": "4h",
    "1day": "1D",
    "1week": "7D",
    "1month": "MS",
}

INTRADAY = frozenset({"1min", "5min", "15min", "30min", "45min", "1h", "2h", "4h"})


def offset(timeframe: str) -> pd.DateOffset:
    """The length of one bar of ``timeframe`` as a pandas offset."""
    try:
        return pd.tseries.frequencies.to_offset(_OFFSETS[timeframe])
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(_OFFSETS)}") from None


def is_intraday(timeframe: str) -> bool:
    return timeframe in INTRADAY
