"""A simulated exchange: quotes, orders, positions, and the rules that reject orders.

The exchange is the trading domain's back end. Its MCP server (:mod:`.exchange_server`)
exposes it to agents; the market data generator moves its prices. It is deliberately
strict, because the point of the domain is that agents act within limits:

- an order for an unknown symbol, a non-positive quantity, or a side other than buy/sell
  is refused;
- an order above ``max_order_quantity`` or ``max_order_notional`` is refused;
- an order that would take the position beyond ``max_position`` (either way) is refused;
- a limit price outside the collar (``price_collar`` around the last price) is refused;
- a symbol compliance has restricted is refused, with compliance's reason;
- the same idempotency key returns the first answer and fills nothing twice.

Marketable orders fill at once at the touch (the ask for a buy, the bid for a sell);
limit orders that are not marketable rest until the price reaches them or they are
cancelled. Not thread-safe: the MCP server calls it from one event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    FILLED = "filled"
    OPEN = "open"
    CANCELLED = "cancelled"


class OrderRejected(ValueError):
    """The exchange refused an order; ``rule`` names the rule (``max_position``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Limits:
    """Per-order and per-symbol limits the exchange enforces."""

    max_order_quantity: int = 1_000
    max_order_notional: float = 250_000.0
    max_position: int = 5_000
    price_collar: float = 0.10
    """A limit price may differ from the last price by at most this fraction."""
    half_spread: float = 0.0005
    """Half the bid-ask spread, as a fraction of the last price."""


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float
    ask: float
    last: float
    time: str


@dataclass(frozen=True)
class Order:
    order_id: str
    symbol: str
    side: Side
    quantity: int
    limit_price: float | None
    status: OrderStatus
    fill_price: float | None
    time: str
    idempotency_key: str | None = None


@dataclass
class _Book:
    last: float
    position: int = 0
    restriction: str | None = None
    resting: dict[str, Order] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Exchange:
    """The exchange's state: the last price, position and resting orders of each symbol."""

    def __init__(
        self,
        prices: Mapping[str, float],
        limits: Limits | None = None,
        *,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.limits = limits or Limits()
        self._books = {symbol: _Book(last=price) for symbol, price in prices.items()}
        self._orders: dict[str, Order] = {}
        self._by_key: dict[str, Order] = {}
        self._ids = (f"ord-{n:06d}" for n in itertools.count(1))
        self._clock = clock

    # --- market data ------------------------------------------------------------------------

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            known = ", ".join(sorted(self._books))
            raise OrderRejected("unknown_symbol", f"symbol {symbol!r} is not listed ({known})")
        return book

    def quote(self, symbol: str) -> Quote:
        """The current bid, ask and last price of ``symbol``."""
        book = self._book(symbol)
        spread = book.last * self.limits.half_spread
        return Quote(
            symbol=symbol,
            bid=round(book.last - spread, 4),
            ask=round(book.last + spread, 4),
            last=book.last,
            time=self._clock(),
        )

    def set_price(self, symbol: str, price: float) -> list[Order]:
        """Move the last price (a trade on the market); fill resting orders it reaches."""
        if price <= 0:
            raise ValueError(f"symbol {symbol}: price must be positive, got {price}")
        book = self._book(symbol)
        book.last = price
        quote = self.quote(symbol)
        filled = []
        for order_id, order in sorted(book.resting.items()):
            assert order.limit_price is not None
            touch = quote.ask if order.side is Side.BUY else quote.bid
            if (order.side is Side.BUY and touch <= order.limit_price) or (
                order.side is Side.SELL and touch >= order.limit_price
            ):
                del book.resting[order_id]
                filled.append(self._fill(book, order, touch))
        return filled

    # --- compliance -------------------------------------------------------------------------

    def restrict(self, symbol: str, reason: str) -> None:
        """Compliance's veto: refuse every new order in ``symbol`` until lifted."""
        self._book(symbol).restriction = reason

    def lift(self, symbol: str) -> None:
        self._book(symbol).restriction = None

    def restriction(self, symbol: str) -> str | None:
        return self._book(symbol).restriction

    # --- orders -----------------------------------------------------------------------------

    def place_order(
        self,
        symbol: str,
        side: str,
        quantity: int,
        limit_price: float | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Order:
        """Check the order against every rule, then fill it or rest it.

        Raises :class:`OrderRejected` naming the rule. With an ``idempotency_key`` seen
        before, returns that order as it is now and changes nothing.
        """
        if idempotency_key is not None and idempotency_key in self._by_key:
            return self._orders[self._by_key[idempotency_key].order_id]
        book = self._book(symbol)
        try:
            order_side = Side(side)
        except ValueError:
            raise OrderRejected("side", f"side must be buy or sell, got {side!r}") from None
        self._check(symbol, book, order_side, quantity, limit_price)
        order = Order(
            order_id=next(self._ids),
            symbol=symbol,
            side=order_side,
            quantity=quantity,
            limit_price=limit_price,
            status=OrderStatus.OPEN,
            fill_price=None,
            time=self._clock(),
            idempotency_key=idempotency_key,
        )
        quote = self.quote(symbol)
        touch = quote.ask if order_side is Side.BUY else quote.bid
        marketable = limit_price is None or (
            limit_price >= touch if order_side is Side.BUY else limit_price <= touch
        )
        if marketable:
            order = self._fill(book, order, touch)
        else:
            book.resting[order.order_id] = order
            self._orders[order.order_id] = order
        if idempotency_key is not None:
            self._by_key[idempotency_key] = order
        return order

    def _check(
        self, symbol: str, book: _Book, side: Side, quantity: int, limit_price: float | None
    ) -> None:
        limits = self.limits
        if book.restriction is not None:
            raise OrderRejected(
                "compliance", f"{symbol} is restricted by compliance: {book.restriction}"
            )
        if quantity <= 0:
            raise OrderRejected("quantity", f"quantity must be positive, got {quantity}")
        if quantity > limits.max_order_quantity:
            raise OrderRejected(
                "max_order_quantity",
                f"quantity {quantity} exceeds the limit of {limits.max_order_quantity}",
            )
        price = limit_price if limit_price is not None else book.last
        if limit_price is not None and abs(limit_price - book.last) > (
            book.last * limits.price_collar
        ):
            raise OrderRejected(
                "price_collar",
                f"limit {limit_price} is more than {limits.price_collar:.0%} "
                f"from the last price {book.last}",
            )
        if quantity * price > limits.max_order_notional:
            raise OrderRejected(
                "max_order_notional",
                f"notional {quantity * price:.2f} exceeds the limit of "
                f"{limits.max_order_notional:.2f}",
            )
        signed = quantity if side is Side.BUY else -quantity
        pending = sum(
            o.quantity if o.side is Side.BUY else -o.quantity for o in book.resting.values()
        )
        after = book.position + pending + signed
        if abs(after) > limits.max_position:
            raise OrderRejected(
                "max_position",
                f"{symbol} position would be {after}, beyond the limit of ±{limits.max_position}",
            )

    def _fill(self, book: _Book, order: Order, price: float) -> Order:
        book.position += order.quantity if order.side is Side.BUY else -order.quantity
        filled = replace(order, status=OrderStatus.FILLED, fill_price=price, time=self._clock())
        self._orders[order.order_id] = filled
        return filled

    def cancel_order(self, order_id: str) -> Order:
        """Cancel a resting order; a filled or unknown order cannot be cancelled."""
        order = self._orders.get(order_id)
        if order is None:
            raise OrderRejected("unknown_order", f"order {order_id!r} does not exist")
        book = self._book(order.symbol)
        if order_id not in book.resting:
            raise OrderRejected("not_open", f"order {order_id} is {order.status}, not open")
        del book.resting[order_id]
        cancelled = replace(order, status=OrderStatus.CANCELLED, time=self._clock())
        self._orders[order_id] = cancelled
        return cancelled

    def positions(self) -> dict[str, int]:
        """Every symbol's position (bought minus sold), zeros included."""
        return {symbol: book.position for symbol, book in sorted(self._books.items())}

    def orders(self) -> list[Order]:
        return [self._orders[k] for k in sorted(self._orders)]
