from __future__ import annotations

import pytest
from chorus_api.agent import Stream
from chorus_api.streams import resolve_stream
from chorus_api.topics import dead_letter_topic, inbox_topic, replies_topic, tasks_topic
from chorus_operator.model.access import Acl, agent_acls, stream_acls


def _set(acls: tuple[Acl, ...]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(a.resource_type, a.name, a.pattern_type, a.operations) for a in acls}


@pytest.mark.unit
def test_agent_acls_are_exactly_its_own_topics_group_and_transactions() -> None:
    acls = agent_acls("trading", "risk", subscribe=["trading.signals"], publish=["trading.out"])
    read, write, both = ("Describe", "Read"), ("Describe", "Write"), ("Describe", "Read", "Write")
    assert _set(acls) == {
        ("topic", "trading.signals", "literal", read),
        ("topic", "chorus.trading.a2a.risk.inbox", "literal", read),
        ("topic", "chorus.trading.a2a.risk.replies", "literal", read),
        ("topic", "chorus.trading.a2a.", "prefix", write),
        ("topic", "chorus.trading.risk.tasks", "literal", both),
        ("topic", "chorus.agent-cards", "literal", both),
        ("topic", "trading.out", "literal", write),
        ("topic", "chorus.trading.risk.dlq", "literal", write),
        ("topic", "chorus.trading.audit", "literal", write),
        ("group", "chorus.trading.risk", "literal", ("Read",)),
        ("group", "chorus.trading.risk.", "prefix", ("Read",)),
        ("transactionalId", "chorus.trading.risk.", "prefix", write),
    }


def _writable(acls: tuple[Acl, ...], topic: str) -> bool:
    """Whether ``acls`` allow writing ``topic``, matched as Kafka's authorizer does."""
    return any(
        a.resource_type == "topic"
        and "Write" in a.operations
        and (topic == a.name if a.pattern_type == "literal" else topic.startswith(a.name))
        for a in acls
    )


@pytest.mark.unit
def test_an_agent_may_write_every_peers_inbox_and_replies_and_nothing_else_of_theirs() -> None:
    acls = agent_acls("ns", "a")
    for peer in ("b", "a-b", "inbox", "zz-top"):
        assert _writable(acls, inbox_topic("ns", peer)), peer
        assert _writable(acls, replies_topic("ns", peer)), peer
        assert not _writable(acls, tasks_topic("ns", peer)), peer
        assert not _writable(acls, dead_letter_topic("ns", peer)), peer
    # Nor another namespace's, even one whose name starts like this one's.
    assert not _writable(acls, inbox_topic("ns-2", "b"))
    assert not _writable(acls, inbox_topic("other", "b"))


@pytest.mark.unit
def test_at_least_once_agents_get_no_transactional_ids() -> None:
    acls = agent_acls("ns", "a", transactional=False)
    assert not [a for a in acls if a.resource_type == "transactionalId"]


@pytest.mark.unit
def test_no_agent_acl_creates_deletes_or_touches_the_cluster() -> None:
    acls = agent_acls("ns", "a", subscribe=["x"], publish=["y"])
    assert all(a.resource_type != "cluster" for a in acls)
    assert {op for a in acls for op in a.operations} == {"Describe", "Read", "Write"}


@pytest.mark.unit
def test_a_topic_both_subscribed_and_published_is_one_rule() -> None:
    acls = agent_acls("ns", "a", subscribe=["t"], publish=["t"])
    assert [a.operations for a in acls if a.name == "t"] == [("Describe", "Read", "Write")]


@pytest.mark.unit
def test_stream_acls_read_inputs_write_outputs() -> None:
    resolved = resolve_stream(Stream(name="s", job="chorus_flink.jobs.trading"))
    assert _set(stream_acls("trading", "risk-s", resolved)) == {
        ("topic", "trading.trades", "literal", ("Describe", "Read")),
        ("topic", "trading.signals", "literal", ("Describe", "Read", "Write")),
        ("topic", "trading.trades.dlq", "literal", ("Describe", "Read", "Write")),
        ("group", "chorus-flink.trading.risk-s", "literal", ("Read",)),
        ("transactionalId", "chorus-flink.trading.risk-s.", "prefix", ("Describe", "Write")),
    }


@pytest.mark.unit
def test_strimzi_rendering() -> None:
    acl = Acl("topic", "t", "literal", ("Describe", "Read"))
    assert acl.strimzi() == {
        "type": "allow",
        "resource": {"type": "topic", "name": "t", "patternType": "literal"},
        "operations": ["Describe", "Read"],
        "host": "*",
    }
