"""The account's equity at a bar close, stored as an EquitySnapshot (the engine's write;
the reads of equity and its curve are in execution.selectors)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Sum

from execution.brokers.base import AccountSnapshot
from execution.models import EquitySnapshot, Trade, TradeStatus
from execution.selectors import equity_now, starting_cash

ZERO = Decimal("0")


def record_equity_snapshot(timestamp: datetime, account: AccountSnapshot | None = None) -> EquitySnapshot:
    """Store the equity at ``timestamp`` (from the broker account when given, else from the
    trades); the same timestamp again replaces it. Kept to a few queries: the engine
    calls it at every bar."""
    if account is not None:
        equity, cash = account.net_liquidation, account.cash
        open_trades = Trade.objects.filter(status=TradeStatus.OPEN)
        unrealized = None
        count = open_trades.count()
    else:
        derived = equity_now()
        equity, cash, unrealized, count = (
            derived.equity,
            derived.cash,
            derived.unrealized_pnl,
            derived.open_positions,
        )
    realized = Trade.objects.filter(status=TradeStatus.CLOSED).aggregate(p=Sum("realized_pnl"))["p"] or ZERO
    if unrealized is None:
        # equity = starting cash + realised + unrealised - fees of open trades
        open_fees = Trade.objects.filter(status=TradeStatus.OPEN).aggregate(f=Sum("fees"))["f"] or ZERO
        unrealized = equity - starting_cash() - realized + open_fees
    snapshot, _ = EquitySnapshot.objects.update_or_create(
        timestamp=timestamp,
        defaults={
            "equity": equity,
            "cash": cash,
            "positions_value": equity - cash,
            "unrealized_pnl": unrealized,
            "realized_pnl": realized,
            "open_positions": count,
        },
    )
    return snapshot
