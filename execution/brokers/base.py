"""The broker interface every broker implements (paper, IBKR).

The engine process alone owns the broker. It submits :class:`OrderRequest` objects, and
learns what happened by draining :meth:`Broker.poll_events`: order status changes
(:class:`OrderUpdate`), executions (:class:`FillReport`) and connection changes
(:class:`ConnectionEvent`), in the order the broker produced them. Every order carries
the ``client_order_id`` that the database row was written with *before* the call, and
brokers send it along (IBKR ``orderRef``) so reconciliation can match by it.

Statuses use the :class:`execution.models.OrderStatus` values ("submitted",
"partially_filled", "filled", "cancelled", "rejected"); mapping a broker's own status
names onto them is the broker's job.

Errors:
- :class:`BrokerUnavailable`: the request was certainly not sent (disconnected);
  the order may be retried later.
- :class:`SubmitOutcomeUnknown`: the request may or may not have reached the broker
  (timeout, connection lost mid-call); the order goes to ``unknown`` until a targeted
  query (:meth:`Broker.find_order`) or reconciliation resolves it. Never guess.
- :class:`OrderRejected`: the broker refused the order, with its message and code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class BrokerError(Exception):
    """Base of broker errors; the message is one readable line."""


class BrokerUnavailable(BrokerError):
    """Not connected: nothing was sent."""


class SubmitOutcomeUnknown(BrokerError):
    """The submit may or may not have reached the broker."""


class OrderRejected(BrokerError):
    def __init__(self, message: str, code: int | None = None):
        self.code = code
        super().__init__(message)


class UnknownContract(BrokerError):
    """The broker does not know the symbol."""


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    order_type: str = "market"  # "market" | "limit" | "stop" | "stop_limit"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "day"  # "day" | "gtc"
    exchange: str = ""
    currency: str = "USD"


@dataclass(frozen=True)
class BracketRequest:
    """A parent entry with optional take-profit and stop-loss children (one-cancels-other)."""

    parent: OrderRequest
    take_profit: OrderRequest | None = None
    stop_loss: OrderRequest | None = None

    def orders(self) -> list[OrderRequest]:
        return [o for o in (self.parent, self.take_profit, self.stop_loss) if o is not None]


@dataclass(frozen=True)
class SubmitAck:
    client_order_id: str
    broker_order_id: str  # paper id or IB permId, stable across sessions
    session_order_id: int | None = None  # IB per-session orderId


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker currently reports it (open orders, targeted queries)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    status: str
    filled_quantity: Decimal = Decimal("0")
    avg_fill_price: Decimal | None = None
    order_type: str = "market"
    session_order_id: int | None = None


@dataclass(frozen=True)
class OrderUpdate:
    client_order_id: str
    broker_order_id: str
    status: str
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    timestamp: datetime
    message: str = ""
    code: int | None = None


@dataclass(frozen=True)
class FillReport:
    execution_id: str
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    timestamp: datetime
    commission: Decimal | None = None  # None until the commission report arrives


@dataclass(frozen=True)
class CommissionUpdate:
    """A commission report that arrives after its fill (IBKR sends them separately)."""

    execution_id: str
    commission: Decimal


@dataclass(frozen=True)
class ConnectionEvent:
    connected: bool
    message: str
    code: int | None = None


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    quantity: Decimal  # signed: negative is short
    avg_cost: Decimal


@dataclass(frozen=True)
class AccountSnapshot:
    net_liquidation: Decimal
    buying_power: Decimal
    cash: Decimal
    currency: str = "USD"
    extra: dict[str, str] = field(default_factory=dict)


BrokerEvent = OrderUpdate | FillReport | CommissionUpdate | ConnectionEvent


class Broker(ABC):
    """What the engine needs from a broker. Implementations: paper, ibkr."""

    name: str

    @abstractmethod
    def connect(self) -> None:
        """Connect (or raise BrokerUnavailable with a one-line reason)."""

    @abstractmethod
    def disconnect(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def submit(self, request: OrderRequest) -> SubmitAck: ...

    def submit_bracket(self, bracket: BracketRequest) -> list[SubmitAck]:
        """Submit parent and children as one group; default: one by one."""
        return [self.submit(order) for order in bracket.orders()]

    def submit_oco(self, requests: list[OrderRequest]) -> list[SubmitAck]:
        """Submit orders that cancel each other when one fills (protective stop and target
        placed after an entry fill). Default: one by one; the order pipeline also cancels
        the survivors when one fills, so a broker without native OCO stays correct."""
        return [self.submit(order) for order in requests]

    @abstractmethod
    def cancel(self, client_order_id: str) -> None: ...

    @abstractmethod
    def open_orders(self) -> list[BrokerOrder]: ...

    @abstractmethod
    def find_order(self, client_order_id: str) -> BrokerOrder | None:
        """A targeted query (open or completed orders), used to resolve ``unknown``."""

    @abstractmethod
    def executions(self, since: datetime | None = None) -> list[FillReport]:
        """Executions (with commissions where known) since ``since``, for reconciliation."""

    @abstractmethod
    def positions(self) -> list[BrokerPosition]: ...

    @abstractmethod
    def account(self) -> AccountSnapshot: ...

    @abstractmethod
    def poll_events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Process I/O for up to ``timeout`` seconds and return the events, oldest first."""

    def on_bar_open(self, symbol: str, bar: dict) -> None:  # noqa: B027 - optional hook
        """The open of a new closed bar (before :meth:`on_bar`); the paper broker fills
        market orders here, real brokers ignore it."""

    def on_bar(self, symbol: str, bar: dict) -> None:  # noqa: B027 - optional hook
        """A new closed bar; the paper broker fills against it, real brokers ignore it."""
