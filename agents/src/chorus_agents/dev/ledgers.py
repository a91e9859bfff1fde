"""What a domain's back end did in a run, read from its own records, and what it did twice (pure).

The audit says what the agents did; a back end's records say what happened. At the end of
``chorus dev up`` the run reads each domain's back end through its MCP server's read tools
(:meth:`Ledger.reads`: ``ToolCall``\\ s, made by the caller, the only I/O), and
:meth:`Ledger.effects` turns the answers into the *effects* the agents caused, each named by
the *action* it carries out: an order per signal, a work order per machine and failure
mode, an escalated case per customer, a pre-emption per incident, a medication order per
patient and drug. An action with more than one effect is a duplicate (:func:`duplicates`):
an agent did the same thing twice (a retry under a new idempotency key, a redelivered input
handled again without its key). The report counts the effects and fails the run on a
duplicate.

What each back end cannot hold twice by its own rules (a second refund of an order, a
second open work order for one failure) is still counted here: the rule is the back end's,
the count is the proof.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chorus_agents.dev.scenarios import Incident, ToolCall

Effect = tuple[str, str]
"""``(action, effect id)``: an effect in a back end and the action it carries out."""


@dataclass(frozen=True)
class Ledger:
    """How to read a domain's back end after a run, and what in it counts as an effect."""

    reads: Callable[[Sequence[Incident]], tuple[ToolCall, ...]]
    """The read calls for a run with these incidents."""
    effects: Callable[[Sequence[Any]], list[Effect]]
    """The effects in the answers to :attr:`reads`, in their order."""


def duplicates(effects: Sequence[Effect]) -> dict[str, list[str]]:
    """Each action with more than one effect, and those effects' ids."""
    by_action: dict[str, list[str]] = defaultdict(list)
    for action, effect in effects:
        by_action[action].append(effect)
    return {action: ids for action, ids in sorted(by_action.items()) if len(ids) > 1}


def _items(answer: Any, key: str) -> list[Mapping[str, Any]]:
    found = answer.get(key) if isinstance(answer, Mapping) else None
    return [item for item in found or () if isinstance(item, Mapping)]


def _trading(answers: Sequence[Any]) -> list[Effect]:
    # Orders carry their idempotency key, `order:<proposal id>`, and a proposal is named
    # `<signal id>/<what>`: one order per signal (the scene's position, placed without a
    # key, is not an agent's).
    (listed,) = answers
    return [
        (
            f"order for {str(order['idempotency_key']).removeprefix('order:').rpartition('/')[0]}",
            str(order["order_id"]),
        )
        for order in _items(listed, "orders")
        if order.get("idempotency_key")
    ]


def _maintenance(answers: Sequence[Any]) -> list[Effect]:
    (listed,) = answers
    return [
        (f"work order for {o['machine_id']} {o['failure_mode']}", str(o["work_order_id"]))
        for o in _items(listed, "work_orders")
    ]


def _support(answers: Sequence[Any]) -> list[Effect]:
    effects: list[Effect] = []
    for customer in answers:
        for case in _items(customer, "open_cases"):
            if case.get("status") == "escalated":
                effects.append((f"escalation of {case['customer_id']}", str(case["case_id"])))
    return effects


def _traffic(answers: Sequence[Any]) -> list[Effect]:
    # A unit's vehicle id is `<unit>/<incident>`: one pre-emption per incident.
    (listed,) = answers
    return [
        (f"pre-emption for {str(p['vehicle_id']).partition('/')[2]}", str(p["vehicle_id"]))
        for p in _items(listed, "preemptions")
    ]


def _icu(answers: Sequence[Any]) -> list[Effect]:
    return [
        (f"{o['drug']} for {o['patient_id']}", str(o["order_id"]))
        for patient in answers
        for o in _items(patient, "orders")
    ]


LEDGERS: Mapping[str, Ledger] = {
    "trading": Ledger(lambda _: (ToolCall("exchange", "list_orders"),), _trading),
    "maintenance": Ledger(lambda _: (ToolCall("cmms", "list_work_orders"),), _maintenance),
    "support": Ledger(
        lambda incidents: tuple(
            ToolCall("helpdesk", "get_customer", {"customer_id": i.entity}) for i in incidents
        ),
        _support,
    ),
    "traffic": Ledger(lambda _: (ToolCall("signals", "list_preemptions"),), _traffic),
    "icu": Ledger(
        lambda incidents: tuple(
            ToolCall("clinical", "list_medication_orders", {"patient_id": i.entity})
            for i in incidents
        ),
        _icu,
    ),
}
"""Every domain's ledger, by domain name."""
