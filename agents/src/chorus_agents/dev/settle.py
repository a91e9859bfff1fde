"""When a local run has settled: every agent has committed everything it was given.

A quiet spell alone cannot tell an agent that is done from one that is thinking: a model
call takes seconds to minutes and writes nothing meanwhile. An agent commits a record's
offset in the transaction that holds the record's outputs, so an agent whose committed
offset is past the last record on every partition of its inputs has nothing left in hand.
``chorus dev up`` ends once the feed is done, every agent is past what the observer has
seen, and the observer has seen nothing new for a short spell.

The stream jobs are left to that spell: a job writes its outputs with each checkpoint
(every second in a local run), but its Kafka source commits offsets lazily (an idle
fetcher sits in a 10 s poll before it sends them), so its group would look behind for up
to 10 s after the job is done.

Offsets are compared with the last *record* the observer read, not with the partition's
end: a transaction's commit marker takes an offset of its own, past the last record, that
no reader ever commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chorus_api.topics import consumer_group, inbox_topic

from chorus_agents.dev.manifests import Domain

Partition = tuple[str, int]
"""(topic, partition)."""


@dataclass(frozen=True)
class Reader:
    """An agent's consumer group and the topics it reads."""

    group: str
    topics: frozenset[str]


def readers_of(domain: Domain, namespace: str) -> tuple[Reader, ...]:
    """Every agent's group: its inbox and the topics it subscribes to."""
    return tuple(
        Reader(
            consumer_group(namespace, agent.metadata.name),
            frozenset({inbox_topic(namespace, agent.metadata.name)})
            | {s.topic for s in agent.spec.subscribe},
        )
        for agent in domain.agents
    )


def behind(
    readers: Iterable[Reader],
    last_seen: Mapping[Partition, int],
    committed: Mapping[str, Mapping[Partition, int]],
) -> list[str]:
    """What each reader has not committed yet, one line per partition (empty: settled).

    ``last_seen`` is the offset of the last record read on each partition; ``committed``
    the next offset each group will read (absent: it has committed nothing there)."""
    lines = []
    for reader in readers:
        offsets = committed.get(reader.group, {})
        for (topic, partition), last in sorted(last_seen.items()):
            if topic not in reader.topics:
                continue
            done = offsets.get((topic, partition), -1)
            if done <= last:
                lines.append(
                    f"{reader.group}: {topic}[{partition}] committed up to {max(done, 0)}, "
                    f"last record at {last}"
                )
    return lines


def committed_offsets(client: Any, groups: Iterable[str]) -> dict[str, dict[Partition, int]]:
    """The committed offsets of ``groups`` (an ``AdminClient``; one request per group, as
    the API allows). A group that committed nothing maps to nothing."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    found: dict[str, dict[Partition, int]] = {}
    for group in groups:
        futures = client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=5
        )
        listed = futures[group].result(timeout=10)
        found[group] = {
            (tp.topic, tp.partition): tp.offset
            for tp in listed.topic_partitions or ()
            if tp.error is None and tp.offset >= 0
        }
    return found
