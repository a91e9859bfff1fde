"""The chat generator: reproducible, in order, and the angry customer is where it is."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from chorus_agents.support.generator import (
    CUSTOMER_IDS,
    NORMAL_MAX_WAIT_SECONDS,
    NORMAL_MIN_SENTIMENT,
    RECONTACT_WINDOW_SECONDS,
    AngryCustomer,
    Message,
    messages,
)


def by_conversation(stream: list[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = defaultdict(list)
    for m in stream:
        out[m.conversation_id].append(m)
    return out


def agent_waits(conversation: list[Message]) -> list[float]:
    """Seconds from each customer message to the agent's next reply."""
    waits, asked = [], None
    for m in conversation:
        if m.role == "customer" and asked is None:
            asked = m.event_time
        elif m.role == "agent" and asked is not None:
            waits.append((m.event_time - asked).total_seconds())
            asked = None
    return waits


@pytest.mark.unit
def test_same_seed_same_stream_in_event_time_order() -> None:
    first = [m.record() for m in messages(seconds=8 * 3600)]
    assert first == [m.record() for m in messages(seconds=8 * 3600)]
    assert first != [m.record() for m in messages(seconds=8 * 3600, seed=8)]
    times = [m["event_time"] for m in first]
    assert times == sorted(times)
    assert len({m["conversation_id"] for m in first}) >= 10
    assert set(first[0]) == {
        "conversation_id",
        "customer_id",
        "role",
        "text",
        "sentiment",
        "event_time",
    }
    assert {m["role"] for m in first} == {"customer", "agent"}
    assert {m["customer_id"] for m in first} <= set(CUSTOMER_IDS)


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_quiet_run_stays_normal(seed: int) -> None:
    stream = list(messages(seconds=12 * 3600, seed=seed))
    assert all(-1.0 <= m.sentiment <= 1.0 for m in stream)
    customers = [m for m in stream if m.role == "customer"]
    assert min(m.sentiment for m in customers) >= NORMAL_MIN_SENTIMENT
    conversations = by_conversation(stream)
    for conversation in conversations.values():
        assert conversation[0].role == "customer"
        assert max(agent_waits(conversation), default=0.0) <= NORMAL_MAX_WAIT_SECONDS
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for conversation in conversations.values():
        spans[conversation[0].customer_id].append(
            (conversation[0].event_time, conversation[-1].event_time)
        )
    for visits in spans.values():
        for (_, ended), (began, _) in pairwise(sorted(visits)):
            assert (began - ended).total_seconds() >= RECONTACT_WINDOW_SECONDS


@pytest.mark.unit
def test_angry_customer_sentiment_falls_waits_grow_and_they_contact_again() -> None:
    angry = AngryCustomer("cust-003", at_seconds=3600.0, messages=5, recontact_after_seconds=600)
    stream = list(messages(seconds=6 * 3600, incidents=(angry,)))
    theirs = by_conversation([m for m in stream if m.customer_id == "cust-003"])
    assert len(theirs) == 2
    first, again = sorted(theirs.values(), key=lambda c: c[0].event_time)
    said = [m.sentiment for m in first if m.role == "customer"]
    assert len(said) == 5
    assert all(later < earlier for earlier, later in pairwise(said))
    assert said[0] > -0.2 and said[-1] < -0.8
    waits = agent_waits(first)
    assert min(waits) > NORMAL_MAX_WAIT_SECONDS and waits == sorted(waits)
    gap = (again[0].event_time - first[-1].event_time).total_seconds()
    assert 0 < gap < RECONTACT_WINDOW_SECONDS
    assert again[0].sentiment < NORMAL_MIN_SENTIMENT
    assert first[0].event_time == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    # Everyone else stays calm.
    calm = [m for m in stream if m.customer_id != "cust-003" and m.role == "customer"]
    assert min(m.sentiment for m in calm) >= NORMAL_MIN_SENTIMENT
    assert angry.incident_id == "angry-customer:cust-003@3600"


@pytest.mark.unit
def test_an_incident_for_a_customer_not_in_the_run_is_an_error() -> None:
    with pytest.raises(ValueError, match="cust-404"):
        list(messages(seconds=60, incidents=(AngryCustomer("cust-404", 0.0),)))
