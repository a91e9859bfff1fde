from __future__ import annotations

import pytest
from chorus_api.agent import Stream
from chorus_api.streams import resolve_stream
from chorus_operator.model.access import Acl, agent_acls, stream_acls


def _set(acls: tuple[Acl, ...]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(a.resource_type, a.name, a.pattern_type, a.operations) for a in acls}


@pytest.mark.unit
def test_agent_acls_are_exactly_its_own_topics_group_and_transactions() -> None:
    acls = agent_acls("trading", "risk", subscribe=["trading.signals"], publish=["trading.out"])
    read, write, both = ("Describe", "Read"), ("Describe", "Write"), ("Describe", "Read", "Write")
    assert _set(acls) == {
        ("topic", "trading.signals", "literal", read),
        ("topic", "chorus.trading.risk.inbox", "literal", read),
        ("topic", "chorus.trading.risk.replies", "literal", read),
        ("topic", "chorus.trading.risk.tasks", "literal", both),
        ("topic", "chorus.agent-cards", "literal", both),
        ("topic", "trading.out", "literal", write),
        ("topic", "chorus.trading.risk.dlq", "literal", write),
        ("topic", "chorus.trading.audit", "literal", write),
        ("group", "chorus.trading.risk", "literal", ("Read",)),
        ("group", "chorus.trading.risk.", "prefix", ("Read",)),
        ("transactionalId", "chorus.trading.risk.", "prefix", write),
    }


@pytest.mark.unit
def test_peers_add_only_their_inbox_and_replies() -> None:
    alone = _set(agent_acls("ns", "a"))
    with_peers = _set(agent_acls("ns", "a", peers=["b", "a"]))
    assert with_peers - alone == {
        ("topic", "chorus.ns.b.inbox", "literal", ("Describe", "Write")),
        ("topic", "chorus.ns.b.replies", "literal", ("Describe", "Write")),
    }


@pytest.mark.unit
def test_at_least_once_agents_get_no_transactional_ids() -> None:
    acls = agent_acls("ns", "a", transactional=False)
    assert not [a for a in acls if a.resource_type == "transactionalId"]


@pytest.mark.unit
def test_no_agent_acl_creates_deletes_or_touches_the_cluster() -> None:
    acls = agent_acls("ns", "a", subscribe=["x"], publish=["y"], peers=["b"])
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
        ("topic", "trading.signals", "literal", ("Describe", "Write")),
        ("topic", "trading.trades.dlq", "literal", ("Describe", "Write")),
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
