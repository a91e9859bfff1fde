"""Which condition changes become Kubernetes Events."""

from __future__ import annotations

import pytest
from chorus_operator.runtime import announced
from chorus_operator.status import Transition


def change(type_: str, old: str | None, new: str) -> Transition:
    return Transition(type_, old, new, "Reason", "message")


@pytest.mark.unit
def test_a_healthy_creation_makes_two_events_and_problems_always_one() -> None:
    creation = [
        change("Ready", None, "False"),  # its children are being made: Warning
        change("TopicsReady", None, "Unknown"),
        change("WorkloadReady", None, "Unknown"),
        change("TopicsReady", "Unknown", "True"),
        change("WorkloadReady", "Unknown", "True"),
        change("Ready", "False", "True"),
    ]
    assert [c for c in creation if announced(c)] == [creation[0], creation[-1]]
    assert announced(change("WorkloadReady", "True", "False"))  # went bad
    assert announced(change("StreamsReady", "True", "Unknown"))
    assert not announced(change("StreamsReady", "False", "True"))  # Ready says it
