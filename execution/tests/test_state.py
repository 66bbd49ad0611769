from decimal import Decimal

import pytest

from execution.models import Order, OrderStatus
from execution.state import TRANSITIONS, IllegalTransition, can_transition, transition
from strategies.models import StrategyEvent

pytestmark = pytest.mark.django_db
ALL = [s.value for s in OrderStatus]
ILLEGAL = [(a, b) for a in ALL for b in ALL if a != b and b not in TRANSITIONS[a]]
LEGAL = [(a, b) for a in ALL for b in sorted(TRANSITIONS[a])]  # sorted: xdist workers must agree


def make(stock, status):
    return Order.objects.create(
        client_order_id=f"c-{status}", stock=stock, side="buy", quantity=Decimal("10"), status=status
    )


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_every_illegal_transition_raises_and_is_journaled(stock, old, new):
    order = make(stock, old)
    with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
        transition(order, new)
    order.refresh_from_db()
    assert order.status == old
    event = StrategyEvent.objects.get(event_type="order.illegal_transition")
    assert f"illegal transition {old} -> {new}" in event.message
    assert event.severity == "error"


@pytest.mark.parametrize(("old", "new"), LEGAL)
def test_every_legal_transition_is_saved_and_journaled(stock, old, new):
    order = make(stock, old)
    assert transition(order, new, reason="because")
    order.refresh_from_db()
    assert order.status == new
    assert StrategyEvent.objects.filter(event_type=f"order.{new}").exists()


def test_terminal_states_have_no_way_out():
    for status in ("filled", "cancelled", "rejected"):
        assert not TRANSITIONS[status]
        assert not any(can_transition(status, other) for other in ALL)


def test_repeating_the_current_state_is_a_no_op(stock):
    order = make(stock, "submitted")
    assert transition(order, "submitted") is False
    assert not StrategyEvent.objects.exists()
