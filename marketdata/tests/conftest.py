import pandas as pd
import pytest

from marketdata.models import Stock


@pytest.fixture
def stock(db):
    return Stock.objects.create(symbol="AAPL", exchange="NASDAQ", name="Apple")


def make_bars(n=5, start="2024-01-02 14:30", freq="1min", base=100.0):
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    close = [base + i for i in range(n)]
    return pd.DataFrame(
        {
            "open": [c - 0.5 for c in close],
            "high": [c + 1.0 for c in close],
            "low": [c - 1.0 for c in close],
            "close": close,
            "volume": [1000.0 + i for i in range(n)],
        },
        index=index,
    )
