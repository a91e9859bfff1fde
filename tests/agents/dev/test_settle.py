"""When ``chorus dev up`` may end: every agent past the last record of its inputs."""

from __future__ import annotations

import json
import uuid

import pytest
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.services.kafka import admin, create_topics
from chorus_agents.dev.settle import Reader, behind, committed_offsets, readers_of
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.services.base import REPO
from tests.services.kafka import KafkaBroker

ANALYST = Reader("chorus.trading.market-analyst", frozenset({"trading.signals", "inbox"}))


@pytest.mark.unit
def test_a_reader_is_behind_until_its_committed_offset_passes_the_last_record() -> None:
    seen = {("trading.signals", 0): 9, ("trading.signals", 1): 4, ("trading.trades", 0): 99}
    # Offset 10 is the next to read: record 9 is done. Partition 1: nothing committed yet.
    assert behind([ANALYST], seen, {ANALYST.group: {("trading.signals", 0): 10}}) == [
        "chorus.trading.market-analyst: trading.signals[1] committed up to 0, last record at 4"
    ]
    # Committing the record itself (9) means it is still in hand.
    lines = behind([ANALYST], seen, {ANALYST.group: {("trading.signals", 0): 9}})
    assert lines[0].startswith("chorus.trading.market-analyst: trading.signals[0]")
    # Past a commit marker (offset 11 after record 9) is past the record too.
    done = {("trading.signals", 0): 11, ("trading.signals", 1): 5}
    assert behind([ANALYST], seen, {ANALYST.group: done}) == []
    # A topic the reader does not read (trading.trades) never holds it back.
    assert behind([ANALYST], {("trading.trades", 0): 99}, {}) == []


@pytest.mark.unit
def test_the_readers_are_each_agents_group_with_its_inbox_and_subscriptions() -> None:
    readers = {
        r.group: r.topics
        for r in readers_of(load_domain(REPO / "agents" / "trading" / "deploy"), "trading")
    }
    assert set(readers) == {
        f"chorus.trading.{a}"
        for a in ("market-analyst", "risk-assessor", "execution", "compliance")
    }
    assert readers["chorus.trading.market-analyst"] == {
        "chorus.trading.a2a.market-analyst.inbox",
        "trading.signals",
    }
    assert readers["chorus.trading.execution"] == {"chorus.trading.a2a.execution.inbox"}


@pytest.mark.integration
def test_a_group_that_has_not_committed_its_last_record_is_behind_on_a_real_broker(
    kafka: KafkaBroker,
) -> None:
    topic, group = f"settle-{uuid.uuid4().hex[:8]}", f"settle-group-{uuid.uuid4().hex[:8]}"
    create_topics(kafka, [topic], partitions=1)
    producer = Producer(kafka.client_config())
    for i in range(5):
        producer.produce(topic, json.dumps({"i": i}).encode())
    producer.flush(10)
    reader = Reader(group, frozenset({topic}))
    client = admin(kafka)
    seen = {(topic, 0): 4}
    assert committed_offsets(client, [group]) == {group: {}}
    assert behind([reader], seen, committed_offsets(client, [group])) != []

    consumer = Consumer({**kafka.client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        # Record 4 still in hand: behind, naming the group and the partition.
        (line,) = behind([reader], seen, committed_offsets(client, [group]))
        assert line == f"{group}: {topic}[0] committed up to 4, last record at 4"
        consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        assert behind([reader], seen, committed_offsets(client, [group])) == []
    finally:
        consumer.close()
