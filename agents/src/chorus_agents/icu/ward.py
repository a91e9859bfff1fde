"""The reference ward: the EHR's formulary with antihypertensives, and the standing orders.

:data:`~chorus_agents.icu.ehr.FORMULARY` holds what a sepsis bundle needs (antibiotics,
crystalloids, vasopressors). A ward also has patients on their usual medicines; the ones
that matter when a patient becomes septic are antihypertensives, which are held when the
blood pressure falls. :data:`WARD_FORMULARY` adds them, and :data:`STANDING_ORDERS` are
the orders the patients come in with: :func:`ward_ehr` builds the EHR the clinical MCP
server serves (``create_server``) and the tests use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from chorus_agents.icu.devices import DeviceGateway
from chorus_agents.icu.ehr import FORMULARY, PATIENTS, Drug, Ehr, Patient

ANTIHYPERTENSIVE_CLASS = "antihypertensives"

WARD_FORMULARY: Mapping[str, Drug] = {
    **FORMULARY,
    **{
        d.name: d
        for d in (
            Drug("amlodipine", "mg", 10.0, (ANTIHYPERTENSIVE_CLASS, "calcium-channel-blockers")),
            Drug("ramipril", "mg", 10.0, (ANTIHYPERTENSIVE_CLASS, "ace-inhibitors")),
            Drug("labetalol", "mg", 200.0, (ANTIHYPERTENSIVE_CLASS, "beta-blockers")),
        )
    },
}
"""The EHR's formulary plus the antihypertensives the patients take."""

ANTIHYPERTENSIVES = frozenset(
    name for name, drug in WARD_FORMULARY.items() if ANTIHYPERTENSIVE_CLASS in drug.classes
)


@dataclass(frozen=True)
class StandingOrder:
    patient_id: str
    drug: str
    dose: float
    route: str
    frequency: str


STANDING_ORDERS: tuple[StandingOrder, ...] = (
    StandingOrder("pt-001", "ramipril", 5.0, "oral", "daily"),
    StandingOrder("pt-002", "amlodipine", 10.0, "oral", "daily"),
    StandingOrder("pt-003", "labetalol", 100.0, "oral", "bid"),
)
"""What the reference patients are on when the run starts (pt-004 takes nothing)."""


def ward_ehr(
    patients: Iterable[Patient] = PATIENTS,
    orders: Iterable[StandingOrder] = STANDING_ORDERS,
    *,
    clock: Callable[[], str] | None = None,
) -> Ehr:
    """An EHR with :data:`WARD_FORMULARY` and ``orders`` placed (keys ``standing:<n>``)."""
    ehr = (
        Ehr(patients, WARD_FORMULARY)
        if clock is None
        else Ehr(patients, WARD_FORMULARY, clock=clock)
    )
    for n, order in enumerate(orders, start=1):
        ehr.prescribe(
            order.patient_id,
            order.drug,
            order.dose,
            order.route,
            order.frequency,
            idempotency_key=f"standing:{n}",
        )
    return ehr


def ward_devices(patients: Iterable[Patient] = PATIENTS) -> DeviceGateway:
    """The bedside monitors of ``patients``."""
    return DeviceGateway(p.patient_id for p in patients)
