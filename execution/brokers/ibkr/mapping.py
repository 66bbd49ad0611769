"""Between IB's objects and ours: orders out; contracts, statuses, fills, positions and
account values in.

Functions of the library's objects only (read by attribute, so the fake IB's serve too):
the one place that knows IB's spellings (``BUY``/``BOT``, ``STP LMT``, "unset" max floats).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from execution.brokers import ib_compat as ibc
from execution.brokers.base import (
    AccountSnapshot,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    BrokerUnavailable,
    FillReport,
    OrderRejected,
    OrderRequest,
    UnknownContract,
)
from execution.brokers.ibkr.errors import CANCEL_FAILED_CODES, reason_from_log
from marketdata.money import as_decimal, to_decimal

ZERO = Decimal("0")

_SIDE = {"buy": "BUY", "sell": "SELL"}
_SIDE_BACK = {"BUY": "buy", "SELL": "sell"}
_EXEC_SIDE = {"BOT": "buy", "SLD": "sell"}
_TIF = {"day": "DAY", "gtc": "GTC"}
_ORDER_TYPE = {"MKT": "market", "LMT": "limit", "STP": "stop", "STP LMT": "stop_limit"}
_ACCOUNT_TAGS = ("NetLiquidation", "BuyingPower", "TotalCashValue")
_EXTRA_ACCOUNT_TAGS = ("AvailableFunds", "ExcessLiquidity", "GrossPositionValue", "EquityWithLoanValue")

ContractKey = tuple[str, str, str]  # (symbol, primary exchange or "", currency), upper case


def ib_decimal(value: Any) -> Decimal | None:
    """A library float as Decimal, unrounded (IB's commissions carry more than six
    decimals) and without trailing zeros; IB's "unset" (max float) and NaN become None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or abs(number) >= 1e300:
        return None
    return as_decimal(number).normalize() if number else ZERO


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: Any) -> datetime:
    """A library timestamp in UTC; a missing or naive one (IB's "unset") is now."""
    if isinstance(value, datetime) and value.tzinfo is not None and value.year > 1970:
        return value.astimezone(UTC)
    return now()


def map_status(ib_status: str, filled: Decimal, error_code: int | None = None) -> str | None:
    """IB's order status onto ours; None while nothing is decided yet.

    ``Inactive`` (refused by IB or the exchange) and an order cancelled because of an order
    error are rejections when nothing was filled; with fills they are cancellations of the
    remainder. A cancel that failed (161, 10147...) decides nothing: the real state follows.
    """
    if ib_status == "Filled":
        return "filled"
    if ib_status in ("Cancelled", "ApiCancelled"):
        if error_code in CANCEL_FAILED_CODES:
            return None
        if error_code and filled == 0:
            return "rejected"
        return "cancelled"
    if ib_status == "Inactive":
        return "rejected" if filled == 0 else "cancelled"
    if ib_status in ("PreSubmitted", "Submitted"):
        return "partially_filled" if filled > 0 else "submitted"
    return None  # PendingSubmit, ApiPending, PendingCancel


# --- out: orders and contracts -----------------------------------------------------------


def build_order(request: OrderRequest, account_id: str) -> Any:
    """The library's order for ``request``, or :class:`OrderRejected` before anything is sent."""
    action = _SIDE.get(request.side)
    if action is None:
        raise OrderRejected(f"{request.client_order_id}: side {request.side!r} is not buy or sell")
    if request.quantity is None or request.quantity <= 0:
        raise OrderRejected(f"{request.client_order_id}: quantity must be positive")
    tif = _TIF.get(request.time_in_force)
    if tif is None:
        raise OrderRejected(
            f"{request.client_order_id}: time in force {request.time_in_force!r} is not day or gtc"
        )
    qty = float(request.quantity)
    kind = request.order_type
    needs_limit = kind in ("limit", "stop_limit")
    needs_stop = kind in ("stop", "stop_limit")
    if needs_limit and not request.limit_price:
        raise OrderRejected(f"{request.client_order_id}: a {kind} order needs a limit price")
    if needs_stop and not request.stop_price:
        raise OrderRejected(f"{request.client_order_id}: a {kind} order needs a stop price")
    if kind == "market":
        order = ibc.MarketOrder(action, qty)
    elif kind == "limit":
        order = ibc.LimitOrder(action, qty, float(request.limit_price))
    elif kind == "stop":
        order = ibc.StopOrder(action, qty, float(request.stop_price))
    elif kind == "stop_limit":
        order = ibc.StopLimitOrder(action, qty, float(request.limit_price), float(request.stop_price))
    else:
        raise OrderRejected(f"{request.client_order_id}: order type {kind!r} is not supported by IBKR")
    order.tif = tif
    order.orderRef = request.client_order_id
    if account_id:
        order.account = account_id
    return order


def link_group(orders: list[Any], ids: list[int], oca: str, linked: bool) -> None:
    """Give the orders their ids and make them one OCA group named ``oca``.

    ``linked`` (a bracket): the first is the parent of the rest, and only the last has
    ``transmit`` set, so TWS holds the group until it is complete. The OCA type "reduce
    with block" (2) shrinks the other exits when one partly fills, so the remaining
    position stays covered, and guards against over-fills (type 1 would cancel the whole
    stop after a partial take-profit).
    """
    for i, order in enumerate(orders):
        order.orderId = ids[i]
        if linked:
            order.transmit = i == len(orders) - 1
            if i > 0:
                order.parentId = ids[0]
        if (linked and i > 0) or (not linked and len(orders) > 1):
            order.ocaGroup = oca
            order.ocaType = 2


def contract_key(symbol: str, exchange: str, currency: str) -> ContractKey:
    return (symbol.upper(), exchange.upper(), currency.upper())


def stock_query(key: ContractKey) -> Any:
    """The stock to ask IB about: SMART-routed, its primary exchange when known."""
    extra = {"primaryExchange": key[1]} if key[1] else {}
    return ibc.Stock(key[0], "SMART", key[2], **extra)


def stock_contract(key: ContractKey, details: list[Any]) -> Any:
    """The one contract IB's answer names, or :class:`UnknownContract` saying why not."""
    where = f"{key[0]} ({key[2]}{', primary exchange ' + key[1] if key[1] else ''})"
    if not details:
        raise UnknownContract(f"IB has no stock {where}: no security definition (code 200)")
    if len(details) > 1:
        exchanges = sorted({d.contract.primaryExchange for d in details if d.contract.primaryExchange})
        raise UnknownContract(
            f"IB knows several stocks {where} (primary exchanges {', '.join(exchanges) or '?'}); "
            "set the stock's exchange"
        )
    contract = details[0].contract
    # Keep SMART routing: the qualified contract names the listing exchange instead.
    contract.exchange = "SMART"
    return contract


# --- in: orders, fills, positions, account ----------------------------------------------


def side_of(action: str, default: str) -> str:
    return _SIDE_BACK.get(action, default)


def order_type_of(ib_type: str, default: str) -> str:
    return _ORDER_TYPE.get(ib_type, default)


def filled(trade: Any, all_fills: Callable[[], Iterable[Any]]) -> tuple[Decimal, Decimal | None]:
    """Filled shares and average price, from the status, the order or the executions.

    ``all_fills`` gives the session's executions, for a trade that carries none itself.
    """
    shares_filled = ib_decimal(trade.orderStatus.filled) or ZERO
    avg = ib_decimal(trade.orderStatus.avgFillPrice) or None
    if shares_filled == 0:
        # Completed orders come with an empty status; the order itself carries the total.
        shares_filled = ib_decimal(getattr(trade.order, "filledQuantity", None)) or ZERO
    if shares_filled == 0 or avg is None:
        fills = list(trade.fills)
        if not fills and trade.order.permId:
            fills = [f for f in all_fills() if f.execution.permId == trade.order.permId]
        shares = sum((ib_decimal(f.execution.shares) or ZERO for f in fills), ZERO)
        if shares:
            shares_filled = shares_filled or shares
            value = sum(
                (
                    (ib_decimal(f.execution.shares) or ZERO) * (ib_decimal(f.execution.price) or ZERO)
                    for f in fills
                ),
                ZERO,
            )
            avg = avg or to_decimal(value / shares).normalize()
    if shares_filled == 0 and trade.orderStatus.status == "Filled":
        shares_filled = ib_decimal(trade.order.totalQuantity) or ZERO
    return shares_filled, avg


def error_of(trade: Any, known: tuple[int, str] | None) -> tuple[int | None, str]:
    """The order error that decided the trade's current status (code, IB's words), else the
    last one this broker saw (``known``), else none."""
    if trade.log and trade.log[-1].errorCode and trade.log[-1].status == trade.orderStatus.status:
        entry = trade.log[-1]
        return entry.errorCode, reason_from_log(entry.message)
    if known is not None:
        return known
    return None, ""


def broker_order(trade: Any, shares_filled: Decimal, avg: Decimal | None, code: int | None) -> BrokerOrder:
    status = map_status(trade.orderStatus.status, shares_filled, code)
    if status is None:  # pending at IB: open as far as anyone can tell
        status = "partially_filled" if shares_filled > 0 else "submitted"
    return BrokerOrder(
        client_order_id=trade.order.orderRef,
        broker_order_id=str(trade.order.permId or trade.orderStatus.permId or ""),
        symbol=trade.contract.symbol,
        side=side_of(trade.order.action, trade.order.action.lower()),
        quantity=ib_decimal(trade.order.totalQuantity) or ZERO,
        status=status,
        filled_quantity=shares_filled,
        avg_fill_price=avg,
        order_type=order_type_of(trade.order.orderType, trade.order.orderType.lower()),
        session_order_id=trade.order.orderId or None,
    )


def fill_report(fill: Any, known: Any, commissions: Mapping[str, Decimal]) -> FillReport:
    """An execution as ours; its commission from the fill, the session's copy of it
    (``known``), or else ``commissions`` (reports that arrived on their own, by execId)."""
    execution = fill.execution
    commission = None
    for source in (fill, known):
        report = getattr(source, "commissionReport", None)
        if report is not None and report.execId:
            commission = ib_decimal(report.commission)
            break
    if commission is None:
        commission = commissions.get(execution.execId)
    return FillReport(
        execution_id=execution.execId,
        client_order_id=execution.orderRef,
        broker_order_id=str(execution.permId or ""),
        symbol=fill.contract.symbol,
        side=_EXEC_SIDE.get(execution.side, execution.side.lower()),
        quantity=ib_decimal(execution.shares) or ZERO,
        price=ib_decimal(execution.price) or ZERO,
        timestamp=aware(execution.time),
        commission=commission,
    )


def broker_positions(positions: Iterable[Any]) -> list[BrokerPosition]:
    result = []
    for pos in positions:
        qty = ib_decimal(pos.position) or ZERO
        if qty == 0:
            continue
        result.append(BrokerPosition(pos.contract.symbol, qty, ib_decimal(pos.avgCost) or ZERO))
    return result


def account_snapshot(values: Iterable[Any], account_id: str) -> AccountSnapshot:
    """Net liquidation, buying power and cash from IB's account summary."""
    by_tag: dict[str, Any] = {}
    for value in values:
        by_tag.setdefault(value.tag, value)
    missing = [t for t in _ACCOUNT_TAGS if t not in by_tag]
    if missing:
        raise BrokerUnavailable(
            f"IB sent no {', '.join(missing)} for account {account_id or '?'} in its account summary"
        )

    def number(tag: str) -> Decimal:
        try:
            return Decimal(by_tag[tag].value)
        except InvalidOperation:
            raise BrokerError(f"IB account value {tag}={by_tag[tag].value!r} is not a number") from None

    return AccountSnapshot(
        net_liquidation=number("NetLiquidation"),
        buying_power=number("BuyingPower"),
        cash=number("TotalCashValue"),
        currency=by_tag["NetLiquidation"].currency or "USD",
        extra={t: by_tag[t].value for t in _EXTRA_ACCOUNT_TAGS if t in by_tag},
    )
