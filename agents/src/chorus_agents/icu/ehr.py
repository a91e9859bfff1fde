"""A simulated electronic health record: patients, allergies and medication orders.

The EHR is one of the ICU domain's back ends (with :mod:`.devices`); :mod:`.clinical_server`
exposes both to agents. Its medication rules:

- an order names a known patient and a drug of the formulary (:data:`FORMULARY`), with a
  positive dose no higher than the drug's maximum single dose;
- a drug the patient is allergic to (the drug, or a class it belongs to) is refused;
- a drug that already has a live (active or held) order for the patient is refused as a
  duplicate;
- holding needs a reason and an active order; discontinuing needs a live order;
- the same idempotency key returns the first answer and changes nothing.

Every refusal is a :class:`MedicationRefused` naming its rule. Not thread-safe: the MCP
server calls it from one event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum


class OrderStatus(StrEnum):
    ACTIVE = "active"
    HELD = "held"
    DISCONTINUED = "discontinued"


class MedicationRefused(ValueError):
    """The EHR refused a medication operation; ``rule`` names the rule (``allergy``, ...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Drug:
    name: str
    unit: str
    max_dose: float
    """The largest single dose, in ``unit``."""
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Patient:
    patient_id: str
    name: str
    bed: str
    allergies: tuple[str, ...]
    """Drug names or drug classes (``penicillins``, ...)."""


@dataclass(frozen=True)
class MedicationOrder:
    order_id: str
    patient_id: str
    drug: str
    dose: float
    unit: str
    route: str
    frequency: str
    status: OrderStatus
    reason: str
    time: str
    idempotency_key: str | None = None


FORMULARY: Mapping[str, Drug] = {
    d.name: d
    for d in (
        Drug("piperacillin-tazobactam", "g", 4.5, ("penicillins", "beta-lactams")),
        Drug("meropenem", "g", 2.0, ("carbapenems", "beta-lactams")),
        Drug("vancomycin", "g", 2.0, ("glycopeptides",)),
        Drug("noradrenaline", "mcg/kg/min", 1.0, ("vasopressors",)),
        Drug("paracetamol", "g", 1.0, ("analgesics",)),
        Drug("sodium chloride 0.9%", "ml", 1000.0, ("crystalloids",)),
    )
}
"""The drugs the ICU may order, with their maximum single dose."""

PATIENTS: tuple[Patient, ...] = (
    Patient("pt-001", "Alex Moreau", "ICU-1", ()),
    Patient("pt-002", "Bea Santos", "ICU-2", ("penicillins",)),
    Patient("pt-003", "Carl Jensen", "ICU-3", ("vancomycin",)),
    Patient("pt-004", "Dara Quinn", "ICU-4", ()),
)
"""The reference patients: the ones the vitals generator and the MCP server know."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ehr:
    """Patients and their medication orders."""

    def __init__(
        self,
        patients: Iterable[Patient],
        formulary: Mapping[str, Drug] = FORMULARY,
        *,
        clock: Callable[[], str] = _now,
    ) -> None:
        self._patients = {p.patient_id: p for p in patients}
        self._formulary = dict(formulary)
        self._orders: dict[str, MedicationOrder] = {}
        self._by_key: dict[str, str] = {}
        self._ids = (f"med-{n:05d}" for n in itertools.count(1))
        self._clock = clock

    def patient(self, patient_id: str) -> Patient:
        patient = self._patients.get(patient_id)
        if patient is None:
            raise MedicationRefused("unknown_patient", f"patient {patient_id!r} does not exist")
        return patient

    def patients(self) -> list[Patient]:
        return [self._patients[k] for k in sorted(self._patients)]

    def order(self, order_id: str) -> MedicationOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise MedicationRefused(
                "unknown_order", f"medication order {order_id!r} does not exist"
            )
        return order

    def orders(self, patient_id: str, *, live_only: bool = False) -> list[MedicationOrder]:
        """A patient's orders in id order; ``live_only`` skips discontinued ones."""
        self.patient(patient_id)
        return [
            o
            for _, o in sorted(self._orders.items())
            if o.patient_id == patient_id
            and not (live_only and o.status is OrderStatus.DISCONTINUED)
        ]

    def _replay(self, key: str | None) -> MedicationOrder | None:
        if key is not None and key in self._by_key:
            return self._orders[self._by_key[key]]
        return None

    def _remember(self, key: str | None, order: MedicationOrder) -> MedicationOrder:
        self._orders[order.order_id] = order
        if key is not None:
            self._by_key[key] = order.order_id
        return order

    def prescribe(
        self,
        patient_id: str,
        drug: str,
        dose: float,
        route: str = "iv",
        frequency: str = "once",
        *,
        idempotency_key: str | None = None,
    ) -> MedicationOrder:
        """Order ``dose`` (in the drug's unit) of ``drug`` for a patient."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        patient = self.patient(patient_id)
        known = self._formulary.get(drug)
        if known is None:
            raise MedicationRefused("unknown_drug", f"{drug!r} is not on the formulary")
        if dose <= 0:
            raise MedicationRefused("dose", f"a dose must be positive, got {dose}")
        if dose > known.max_dose:
            raise MedicationRefused(
                "max_dose",
                f"{dose:g} {known.unit} of {drug} exceeds the maximum single dose of "
                f"{known.max_dose:g} {known.unit}",
            )
        allergic = sorted({drug, *known.classes} & set(patient.allergies))
        if allergic:
            raise MedicationRefused(
                "allergy", f"patient {patient_id} is allergic to {', '.join(allergic)} ({drug})"
            )
        for live in self.orders(patient_id, live_only=True):
            if live.drug == drug:
                raise MedicationRefused(
                    "duplicate_order",
                    f"patient {patient_id} already has {live.status} order {live.order_id} "
                    f"for {drug}",
                )
        order = MedicationOrder(
            order_id=next(self._ids),
            patient_id=patient_id,
            drug=drug,
            dose=dose,
            unit=known.unit,
            route=route,
            frequency=frequency,
            status=OrderStatus.ACTIVE,
            reason="",
            time=self._clock(),
            idempotency_key=idempotency_key,
        )
        return self._remember(idempotency_key, order)

    def hold(
        self, order_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> MedicationOrder:
        """Pause an active order; the reason is recorded (``held for surgery``...)."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self.order(order_id)
        if not reason.strip():
            raise MedicationRefused("hold_reason", "holding a medication needs a reason")
        if order.status is not OrderStatus.ACTIVE:
            raise MedicationRefused("not_active", f"order {order_id} is {order.status}, not active")
        held = replace(order, status=OrderStatus.HELD, reason=reason, time=self._clock())
        return self._remember(idempotency_key, held)

    def discontinue(
        self, order_id: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> MedicationOrder:
        """Stop an active or held order for good."""
        if (seen := self._replay(idempotency_key)) is not None:
            return seen
        order = self.order(order_id)
        if order.status is OrderStatus.DISCONTINUED:
            raise MedicationRefused("discontinued", f"order {order_id} is already discontinued")
        stopped = replace(order, status=OrderStatus.DISCONTINUED, reason=reason, time=self._clock())
        return self._remember(idempotency_key, stopped)
