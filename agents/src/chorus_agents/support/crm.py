"""A simulated CRM: customers and their tiers, contact history, cases and specialist queues.

The CRM is one of the customer service domain's back ends (with :mod:`.knowledge` and
:mod:`.orders`); :mod:`.helpdesk_server` exposes them to agents. Its rules:

- a case belongs to a known customer and has a subject;
- a case is escalated to a known specialist queue (:data:`QUEUES`), with a reason, and
  only while it is open: an escalated case is not escalated again, a closed case is not
  escalated nor closed again;
- the same idempotency key returns the first answer and changes nothing.

Every refusal is a :class:`CrmRefused` naming its rule. Not thread-safe: the MCP server
calls it from one event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

QUEUES = ("billing", "technical", "retention")
"""The specialist queues a case may be escalated to."""


class Tier(StrEnum):
    STANDARD = "standard"
    GOLD = "gold"
    PLATINUM = "platinum"


class CaseStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    CLOSED = "closed"


class CrmRefused(ValueError):
    """The CRM refused an operation; ``rule`` names the rule (``case_closed``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    tier: Tier
    email: str


@dataclass(frozen=True)
class Contact:
    customer_id: str
    channel: str
    summary: str
    time: str


@dataclass(frozen=True)
class Case:
    case_id: str
    customer_id: str
    subject: str
    status: CaseStatus
    queue: str | None
    note: str
    time: str
    idempotency_key: str | None = None


CUSTOMERS: tuple[Customer, ...] = (
    Customer("cust-001", "Ada Byron", Tier.PLATINUM, "ada@example.com"),
    Customer("cust-002", "Ben Okafor", Tier.GOLD, "ben@example.com"),
    Customer("cust-003", "Chen Wei", Tier.STANDARD, "chen@example.com"),
    Customer("cust-004", "Dina Haddad", Tier.STANDARD, "dina@example.com"),
    Customer("cust-005", "Eva Lindqvist", Tier.GOLD, "eva@example.com"),
    Customer("cust-006", "Femi Adeyemi", Tier.STANDARD, "femi@example.com"),
)
"""The reference customers: the ones the message generator and the MCP server know."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Crm:
    """Customers, their contact history and their cases."""

    def __init__(self, customers: Iterable[Customer], *, clock: Callable[[], str] = _now) -> None:
        self._customers = {c.customer_id: c for c in customers}
        self._contacts: dict[str, list[Contact]] = {c: [] for c in self._customers}
        self._cases: dict[str, Case] = {}
        self._by_key: dict[str, str] = {}
        self._contact_keys: dict[str, Contact] = {}
        self._ids = (f"case-{n:05d}" for n in itertools.count(1))
        self._clock = clock

    def customer(self, customer_id: str) -> Customer:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise CrmRefused("unknown_customer", f"customer {customer_id!r} does not exist")
        return customer

    def contacts(self, customer_id: str) -> list[Contact]:
        """The customer's contact history, oldest first."""
        self.customer(customer_id)
        return list(self._contacts[customer_id])

    def case(self, case_id: str) -> Case:
        case = self._cases.get(case_id)
        if case is None:
            raise CrmRefused("unknown_case", f"case {case_id!r} does not exist")
        return case

    def cases(self, customer_id: str | None = None, *, open_only: bool = False) -> list[Case]:
        """Cases in id order, of one customer or all; ``open_only`` skips closed ones."""
        if customer_id is not None:
            self.customer(customer_id)
        return [
            c
            for _, c in sorted(self._cases.items())
            if (customer_id is None or c.customer_id == customer_id)
            and not (open_only and c.status is CaseStatus.CLOSED)
        ]

    def _replay(self, key: str | None) -> Case | None:
        if key is not None and key in self._by_key:
            return self._cases[self._by_key[key]]
        return None

    def _remember(self, key: str | None, case: Case) -> Case:
        self._cases[case.case_id] = case
        if key is not None:
            self._by_key[key] = case.case_id
        return case

    def log_contact(
        self, customer_id: str, channel: str, summary: str, *, idempotency_key: str | None = None
    ) -> Contact:
        """Add a contact (a call, a chat, an email) to the customer's history."""
        if idempotency_key is not None and idempotency_key in self._contact_keys:
            return self._contact_keys[idempotency_key]
        self.customer(customer_id)
        contact = Contact(customer_id, channel, summary, self._clock())
        self._contacts[customer_id].append(contact)
        if idempotency_key is not None:
            self._contact_keys[idempotency_key] = contact
        return contact

    def open_case(
        self, customer_id: str, subject: str, *, idempotency_key: str | None = None
    ) -> Case:
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        self.customer(customer_id)
        if not subject.strip():
            raise CrmRefused("subject", "a case needs a subject")
        case = Case(
            case_id=next(self._ids),
            customer_id=customer_id,
            subject=subject,
            status=CaseStatus.OPEN,
            queue=None,
            note="",
            time=self._clock(),
            idempotency_key=idempotency_key,
        )
        return self._remember(idempotency_key, case)

    def escalate(
        self, case_id: str, queue: str, reason: str, *, idempotency_key: str | None = None
    ) -> Case:
        """Hand an open case to a specialist queue; refused for a closed or escalated case."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        case = self.case(case_id)
        if case.status is CaseStatus.CLOSED:
            raise CrmRefused("case_closed", f"case {case_id} is closed")
        if case.status is CaseStatus.ESCALATED:
            raise CrmRefused(
                "already_escalated", f"case {case_id} is already with the {case.queue} queue"
            )
        if queue not in QUEUES:
            raise CrmRefused(
                "unknown_queue", f"queue {queue!r} does not exist ({', '.join(QUEUES)})"
            )
        if not reason.strip():
            raise CrmRefused("reason", "an escalation needs a reason")
        escalated = replace(
            case, status=CaseStatus.ESCALATED, queue=queue, note=reason, time=self._clock()
        )
        return self._remember(idempotency_key, escalated)

    def close(self, case_id: str, resolution: str, *, idempotency_key: str | None = None) -> Case:
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        case = self.case(case_id)
        if case.status is CaseStatus.CLOSED:
            raise CrmRefused("case_closed", f"case {case_id} is closed")
        closed = replace(case, status=CaseStatus.CLOSED, note=resolution, time=self._clock())
        return self._remember(idempotency_key, closed)
