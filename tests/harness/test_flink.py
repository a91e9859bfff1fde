"""A PyFlink job in the mini-cluster, reading and writing the test broker through the connector."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
from confluent_kafka import Producer

from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker, create_topics, read_topic

pytestmark = pytest.mark.integration

BASE = datetime(2026, 1, 1, 9, 0, 0)
WINDOW = timedelta(seconds=10)

Row = tuple[str, datetime, datetime, int, int]


def scripted_events(count: int = 120, seed: int = 7) -> list[tuple[str, int, datetime]]:
    """(key, value, event_time) across four keys and a dozen windows, a little out of order.

    Event ``i`` happens about ``i / 2`` seconds after BASE, give or take 2 s: never later
    than the job's 5 s watermark delay, so no event is dropped as late.
    """
    rng = random.Random(seed)
    return [
        (
            rng.choice("abcd"),
            rng.randint(-50, 100),
            BASE + timedelta(milliseconds=500 * i + rng.randint(-2000, 2000)),
        )
        for i in range(count)
    ]


def expected_rows(events: list[tuple[str, int, datetime]]) -> set[Row]:
    """The windowed counts and sums, computed without Flink."""
    windows: dict[tuple[str, datetime], list[int]] = defaultdict(list)
    for key, value, at in events:
        start = BASE + ((at - BASE) // WINDOW) * WINDOW
        windows[(key, start)].append(value)
    return {
        (key, start, start + WINDOW, len(values), sum(values))
        for (key, start), values in windows.items()
    }


def test_windowed_counts_job_aggregates_every_window(kafka: KafkaBroker, flink: FlinkEnv) -> None:
    run = uuid.uuid4().hex[:8]
    source, sink = f"harness.flink-events.{run}", f"harness.flink-counts.{run}"
    create_topics(kafka, [source, sink], partitions=2)
    events = scripted_events()

    producer = Producer(kafka.client_config(**{"enable.idempotence": True}))
    for key, value, at in events:
        record = {
            "key": key,
            "value": value,
            "event_time": at.isoformat(sep=" ", timespec="milliseconds"),
        }
        producer.produce(source, key=key, value=json.dumps(record))
    assert producer.flush(30) == 0

    flink.run_chorus_job(
        "windowed_counts",
        {
            "bootstrap_servers": kafka.bootstrap_servers,
            "source_topic": source,
            "sink_topic": sink,
            "window_seconds": 10,
            "watermark_delay_seconds": 5,
            "bounded": True,
            "group_id": f"harness-flink-{run}",
        },
        timeout=300,
    )

    rows: list[Row] = []
    for message in read_topic(kafka, sink):
        raw_key, raw_value = message.key(), message.value()
        assert raw_key is not None and raw_value is not None
        value = json.loads(raw_value)
        assert raw_key.decode() == value["key"]  # records of one key share a partition
        rows.append(
            (
                value["key"],
                datetime.fromisoformat(value["window_start"]),
                datetime.fromisoformat(value["window_end"]),
                value["event_count"],
                value["value_sum"],
            )
        )
    assert Counter(rows).most_common(1)[0][1] == 1, "a window was emitted twice"
    assert set(rows) == expected_rows(events)
