"""A simulated order system: order status, and refunds within the rules.

One of the customer service domain's back ends (see :mod:`.crm`). Its refund rules:

- only a known order is refunded, for a positive amount up to the order's total;
- only within :data:`REFUND_WINDOW_DAYS` (30) days of the order being placed;
- one refund per order;
- the same idempotency key returns the first refund and refunds nothing twice.

Every refusal is an :class:`OrderRefused` naming its rule. Not thread-safe: the MCP
server calls it from one event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

REFUND_WINDOW_DAYS = 30


class OrderStatus(StrEnum):
    PLACED = "placed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class OrderRefused(ValueError):
    """The order system refused an operation; ``rule`` names the rule (``refund_window``...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    items: tuple[str, ...]
    total: float
    placed: datetime
    status: OrderStatus
    tracking: str | None = None


@dataclass(frozen=True)
class Refund:
    refund_id: str
    order_id: str
    amount: float
    reason: str
    time: datetime
    idempotency_key: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def sample_orders(today: datetime) -> list[Order]:
    """The reference orders of :data:`~chorus_agents.support.crm.CUSTOMERS`, dated from today.

    ``ord-1003`` is 45 days old (out of the refund window); the others are within it.
    """

    def ago(days: int) -> datetime:
        return today - timedelta(days=days)

    return [
        Order(
            "ord-1001",
            "cust-001",
            ("laptop stand",),
            89.90,
            ago(3),
            OrderStatus.SHIPPED,
            "TRK-88A1",
        ),
        Order(
            "ord-1002", "cust-002", ("headphones", "case"), 249.00, ago(12), OrderStatus.DELIVERED
        ),
        Order("ord-1003", "cust-002", ("keyboard",), 129.50, ago(45), OrderStatus.DELIVERED),
        Order("ord-1004", "cust-003", ("monitor",), 399.00, ago(1), OrderStatus.PLACED),
        Order("ord-1005", "cust-004", ("webcam",), 74.99, ago(20), OrderStatus.DELIVERED),
        Order(
            "ord-1006", "cust-005", ("desk lamp",), 45.00, ago(8), OrderStatus.SHIPPED, "TRK-19C4"
        ),
    ]


class OrderSystem:
    """Orders and their refunds."""

    def __init__(self, orders: Iterable[Order], *, clock: Callable[[], datetime] = _now) -> None:
        self._orders = {o.order_id: o for o in orders}
        self._refunds: dict[str, Refund] = {}
        self._by_key: dict[str, Refund] = {}
        self._ids = (f"ref-{n:05d}" for n in itertools.count(1))
        self._clock = clock

    def order(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderRefused("unknown_order", f"order {order_id!r} does not exist")
        return order

    def orders(self, customer_id: str) -> list[Order]:
        return [o for _, o in sorted(self._orders.items()) if o.customer_id == customer_id]

    def refund_of(self, order_id: str) -> Refund | None:
        self.order(order_id)
        return self._refunds.get(order_id)

    def refund(
        self, order_id: str, amount: float, reason: str, *, idempotency_key: str | None = None
    ) -> Refund:
        """Refund ``amount`` of an order; raises :class:`OrderRefused` naming the rule."""
        if idempotency_key is not None and idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        order = self.order(order_id)
        if order_id in self._refunds:
            first = self._refunds[order_id]
            raise OrderRefused(
                "one_refund_per_order",
                f"order {order_id} was already refunded {first.amount:.2f} ({first.refund_id})",
            )
        now = self._clock()
        age = now - order.placed
        if age > timedelta(days=REFUND_WINDOW_DAYS):
            raise OrderRefused(
                "refund_window",
                f"order {order_id} was placed {age.days} days ago, beyond the "
                f"{REFUND_WINDOW_DAYS}-day refund window",
            )
        if amount <= 0:
            raise OrderRefused("amount", f"a refund must be positive, got {amount}")
        if amount > order.total:
            raise OrderRefused(
                "refund_exceeds_total",
                f"refund {amount:.2f} exceeds order {order_id}'s total of {order.total:.2f}",
            )
        refund = Refund(
            refund_id=next(self._ids),
            order_id=order_id,
            amount=round(amount, 2),
            reason=reason,
            time=now,
            idempotency_key=idempotency_key,
        )
        self._refunds[order_id] = refund
        if idempotency_key is not None:
            self._by_key[idempotency_key] = refund
        return refund
