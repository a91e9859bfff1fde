"""The order system: refunds within 30 days, up to the total, once per order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chorus_agents.support.orders import OrderRefused, OrderSystem, sample_orders

TODAY = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def system() -> OrderSystem:
    return OrderSystem(sample_orders(TODAY), clock=lambda: TODAY)


@pytest.mark.unit
def test_a_refund_within_the_rules_is_recorded_once() -> None:
    orders = system()
    refund = orders.refund("ord-1002", 249.0, "never arrived")
    assert (refund.refund_id, refund.amount) == ("ref-00001", 249.0)
    assert orders.refund_of("ord-1002") == refund
    assert orders.order("ord-1001").tracking == "TRK-88A1"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("order_id", "amount", "rule"),
    [
        ("ord-9999", 10.0, "unknown_order"),
        ("ord-1003", 10.0, "refund_window"),
        ("ord-1001", 0.0, "amount"),
        ("ord-1001", 89.91, "refund_exceeds_total"),
        ("ord-1005", 1.0, "one_refund_per_order"),
    ],
)
def test_a_refund_breaking_a_rule_is_refused_naming_it(
    order_id: str, amount: float, rule: str
) -> None:
    orders = system()
    first = orders.refund("ord-1005", 5.0, "scratched")
    with pytest.raises(OrderRefused) as refused:
        orders.refund(order_id, amount, "because")
    assert refused.value.rule == rule
    assert orders.refund_of("ord-1005") == first
    if order_id != "ord-9999" and order_id != "ord-1005":
        assert orders.refund_of(order_id) is None


@pytest.mark.unit
def test_the_window_is_thirty_days_from_the_order() -> None:
    placed = sample_orders(TODAY)[1].placed  # 12 days before TODAY
    on_the_day = OrderSystem(sample_orders(TODAY), clock=lambda: placed + timedelta(days=30))
    assert on_the_day.refund("ord-1002", 1.0, "ok").amount == 1.0
    a_day_late = OrderSystem(sample_orders(TODAY), clock=lambda: placed + timedelta(days=31))
    with pytest.raises(OrderRefused, match="31 days ago") as refused:
        a_day_late.refund("ord-1002", 1.0, "late")
    assert refused.value.rule == "refund_window"


@pytest.mark.unit
def test_the_same_idempotency_key_refunds_once() -> None:
    orders = system()
    first = orders.refund("ord-1004", 399.0, "cancelled", idempotency_key="t1/s1")
    assert orders.refund("ord-1004", 399.0, "cancelled", idempotency_key="t1/s1") == first
    assert orders.refund_of("ord-1004") == first
