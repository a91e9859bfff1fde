"""The test Kafka broker itself: it keeps every record in order, and honours transactions."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer

from tests.services.kafka import KafkaBroker, create_topics, read_topic

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    """A topic name no earlier run used: a broker started by hand outlives test runs."""
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def test_ten_thousand_records_arrive_complete_and_in_order(kafka: KafkaBroker) -> None:
    topic, partitions, count = unique("harness.bulk"), 3, 10_000
    create_topics(kafka, [topic], partitions=partitions)

    producer = Producer(kafka.client_config(**{"enable.idempotence": True, "linger.ms": 5}))
    failures: list[str] = []

    def delivered(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for i in range(count):
        producer.produce(
            topic,
            key=f"k{i % partitions}",
            value=f"record-{i}",
            partition=i % partitions,
            on_delivery=delivered,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer(
        kafka.client_config(
            **{
                "group.id": unique("harness.bulk-group"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topic])
    received: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    deadline = time.monotonic() + 60
    try:
        while sum(map(len, received.values())) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                assert message.error() is None, message.error()
                partition, offset = message.partition(), message.offset()
                key, value = message.key(), message.value()
                assert partition is not None and offset is not None
                assert key is not None and value is not None
                received[partition].append((offset, key.decode(), value.decode()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    assert sum(map(len, received.values())) == count
    for partition in range(partitions):
        indices = range(partition, count, partitions)
        assert received[partition] == [
            (offset, f"k{partition}", f"record-{i}") for offset, i in enumerate(indices)
        ]


def test_read_committed_sees_only_the_committed_transaction(kafka: KafkaBroker) -> None:
    topic = unique("harness.txn")
    create_topics(kafka, [topic])
    producer = Producer(kafka.client_config(**{"transactional.id": unique("harness-txn")}))
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key="k", value=f"committed-{i}")
    producer.commit_transaction(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key="k", value=f"aborted-{i}")
    assert producer.flush(30) == 0  # the aborted records really reach the log
    producer.abort_transaction(30)

    committed = [m.value() for m in read_topic(kafka, topic)]
    everything = [m.value() for m in read_topic(kafka, topic, isolation="read_uncommitted")]

    assert committed == [f"committed-{i}".encode() for i in range(5)]
    assert everything == (
        [f"committed-{i}".encode() for i in range(5)] + [f"aborted-{i}".encode() for i in range(5)]
    )
