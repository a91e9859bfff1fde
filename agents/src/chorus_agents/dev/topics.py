"""The Kafka topics a local run of a domain needs, computed from its manifests (pure).

On a cluster the operator creates an agent's topics as Strimzi KafkaTopics
(``chorus_operator.model.kafka``); ``chorus dev up`` has no operator and creates the same
set itself:

- each agent's own four (inbox, replies, dead letters; tasks compacted);
- the namespace's audit topic and the installation's AgentCard registry (compacted);
- publish topics with their ``partitions`` and ``retention``;
- subscribe topics, and each stream's inputs and outputs
  (:func:`chorus_api.streams.resolve_stream`);
- the generator's topic.

A stream's *input* topics get one partition: a Flink Kafka source's watermark is the
minimum over its partitions, and a partition no key hashes to would hold it back for good
(the mini-cluster runs at parallelism 1 with no idleness timeout). Other domain topics
get :data:`DEFAULT_PARTITIONS`, as the operator's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chorus_api.common import duration_ms
from chorus_api.streams import StreamError, resolve_stream
from chorus_api.topics import AGENT_CARDS_TOPIC, audit_topic, own_topics

from chorus_agents.dev.manifests import Domain, DomainError

DEFAULT_PARTITIONS = 3
COMPACT = {"cleanup.policy": "compact"}


@dataclass(frozen=True, order=True)
class TopicSpec:
    """One topic to create: its name, partitions and topic-level config."""

    name: str
    partitions: int = DEFAULT_PARTITIONS
    config: Mapping[str, str] = field(default_factory=dict, compare=False)


def domain_topics(
    domain: Domain, *, extra_inputs: tuple[str, ...] = (), partitions: int = DEFAULT_PARTITIONS
) -> tuple[TopicSpec, ...]:
    """Every topic ``domain`` needs locally, sorted by name (see the module docstring).

    ``extra_inputs`` are topics fed from outside (the generator's); they get one partition
    like a stream's inputs. Raises :class:`DomainError` naming the agent and stream when a
    stream does not resolve.
    """
    found: dict[str, TopicSpec] = {}
    single: set[str] = set(extra_inputs)

    def add(name: str, spec: TopicSpec | None = None) -> None:
        found.setdefault(name, spec or TopicSpec(name, partitions))

    found[AGENT_CARDS_TOPIC] = TopicSpec(AGENT_CARDS_TOPIC, 1, COMPACT)
    found[audit_topic(domain.namespace)] = TopicSpec(audit_topic(domain.namespace), partitions)
    for agent in domain.agents:
        name = agent.metadata.name
        for role, topic in own_topics(domain.namespace, name).items():
            found[topic] = TopicSpec(topic, partitions, COMPACT if role == "tasks" else {})
        for entry in agent.spec.publish:
            retention = {"retention.ms": str(duration_ms(entry.retention))}
            found[entry.topic] = TopicSpec(entry.topic, entry.partitions, retention)
        for stream in agent.spec.streams:
            try:
                resolved = resolve_stream(stream)
            except StreamError as exc:
                raise DomainError(f"agent {domain.namespace}/{name}: {exc}") from None
            single.update(resolved.inputs)
            for topic in (*resolved.inputs, *resolved.outputs):
                add(topic)
        for subscribed in agent.spec.subscribe:
            add(subscribed.topic)
    for topic in extra_inputs:
        add(topic)
    for topic in single:
        spec = found[topic]
        found[topic] = TopicSpec(topic, 1, spec.config)
    return tuple(found[name] for name in sorted(found))
