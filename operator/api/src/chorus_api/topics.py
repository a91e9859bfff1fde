"""The names of the platform's own Kafka topics, consumer groups and transactional ids.

Pure functions, shared by the operator (which creates the topics and grants the ACLs)
and the agent runtime (which reads and writes them), so both sides always agree
(docs/architecture.md has the whole table):

- per agent, the A2A topics every peer of the namespace writes to:
  ``chorus.<namespace>.a2a.<agent>.inbox`` (A2A requests to it) and
  ``chorus.<namespace>.a2a.<agent>.replies`` (answers to the requests it sent);
- per agent, its private topics: ``chorus.<namespace>.<agent>.dlq`` (what it could not
  process) and ``chorus.<namespace>.<agent>.tasks`` (its A2A tasks, compacted, key = task
  id: they survive a restart);
- per namespace: ``chorus.<namespace>.audit``;
- for the whole installation: ``chorus.agent-cards`` (compacted, key ``<namespace>/<agent>``).

Why ``a2a`` in the inbox and replies names (not ``chorus.<namespace>.<agent>.inbox``):
any agent may call any other of its namespace, so each may write every peer's inbox and
replies topic, and nothing else of theirs. Under one common prefix that is a single Kafka
ACL, ``chorus.<namespace>.a2a.`` (prefixed); without it, it takes two literal ACLs
per peer, so every KafkaUser grows with the namespace and a new Agent rewrites all of them.
An Agent may therefore not be named ``a2a`` (:data:`RESERVED_AGENT_NAMES`): its private
topics would fall under the prefix.

A namespace and an agent name are DNS labels (no dots), so a topic name splits back
into its parts unambiguously.
"""

from __future__ import annotations

import re

PREFIX = "chorus"
AGENT_CARDS_TOPIC = f"{PREFIX}.agent-cards"
"""The discovery registry: one compacted record per agent, its A2A AgentCard."""

A2A_SEGMENT = "a2a"
RESERVED_AGENT_NAMES = frozenset({A2A_SEGMENT})
"""Agent names that would make its private topics fall under :func:`a2a_prefix`."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check(namespace: str, agent: str | None = None) -> None:
    if len(namespace) > 63 or _NAMESPACE.fullmatch(namespace) is None:
        raise ValueError(f"not a Kubernetes namespace name (a DNS-1123 label): {namespace!r}")
    if agent is not None and (len(agent) > 63 or _DNS_LABEL.fullmatch(agent) is None):
        raise ValueError(f"not an agent name (a DNS-1035 label): {agent!r}")
    if agent in RESERVED_AGENT_NAMES:
        raise ValueError(f"agent name {agent!r} is reserved (its topics would be A2A topics)")


def agent_prefix(namespace: str, agent: str) -> str:
    """``chorus.<namespace>.<agent>``: the agent's private topics, its consumer groups
    and transactional ids start with it."""
    _check(namespace, agent)
    return f"{PREFIX}.{namespace}.{agent}"


def a2a_prefix(namespace: str) -> str:
    """``chorus.<namespace>.a2a.``: every inbox and replies topic of the namespace starts
    with it, and no other topic does (the one ACL that lets an agent call its peers)."""
    _check(namespace)
    return f"{PREFIX}.{namespace}.{A2A_SEGMENT}."


def inbox_topic(namespace: str, agent: str) -> str:
    """Where A2A requests to the agent arrive: ``chorus.<namespace>.a2a.<agent>.inbox``."""
    _check(namespace, agent)
    return f"{a2a_prefix(namespace)}{agent}.inbox"


def replies_topic(namespace: str, agent: str) -> str:
    """Where answers to the requests the agent sent arrive:
    ``chorus.<namespace>.a2a.<agent>.replies``."""
    _check(namespace, agent)
    return f"{a2a_prefix(namespace)}{agent}.replies"


_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
REPLIES_PATTERN = rf"^{PREFIX}\.{_LABEL}\.{A2A_SEGMENT}\.[a-z]([-a-z0-9]*[a-z0-9])?\.replies$"
"""A replies topic of any agent (what a ``chorus-reply-to`` header may name)."""


def dead_letter_topic(namespace: str, agent: str) -> str:
    """Where records the agent could not process go, the reason in their headers."""
    return f"{agent_prefix(namespace, agent)}.dlq"


def tasks_topic(namespace: str, agent: str) -> str:
    """The agent's A2A tasks, compacted, key = task id."""
    return f"{agent_prefix(namespace, agent)}.tasks"


def audit_topic(namespace: str) -> str:
    """Every model call, tool call and decision of the namespace's agents."""
    _check(namespace)
    return f"{PREFIX}.{namespace}.audit"


def agent_card_key(namespace: str, agent: str) -> str:
    """The agent's key in :data:`AGENT_CARDS_TOPIC`: ``<namespace>/<agent>``."""
    _check(namespace, agent)
    return f"{namespace}/{agent}"


def consumer_group(namespace: str, agent: str) -> str:
    """The agent's one consumer group: every replica joins it."""
    return agent_prefix(namespace, agent)


def stream_group(namespace: str, deployment: str) -> str:
    """The consumer group of a stream's Flink job (``<agent>-<stream>`` is its deployment)
    and the prefix of its transactional ids: ``chorus-flink.<namespace>.<deployment>``."""
    return f"{PREFIX}-flink.{namespace}.{deployment}"


def transactional_id_prefix(namespace: str, agent: str) -> str:
    """Every transactional id of the agent's replicas starts with this (for the ACL)."""
    return f"{agent_prefix(namespace, agent)}."


def transactional_id(namespace: str, agent: str, instance: str) -> str:
    """The transactional id of one replica; ``instance`` is stable across its restarts."""
    if not instance or re.fullmatch(r"[a-zA-Z0-9._-]{1,128}", instance) is None:
        raise ValueError(f"not an instance name (letters, digits, '.', '_', '-'): {instance!r}")
    return f"{transactional_id_prefix(namespace, agent)}{instance}"


def own_topics(namespace: str, agent: str) -> dict[str, str]:
    """The agent's own topics by role: inbox, replies, deadLetter, tasks."""
    return {
        "inbox": inbox_topic(namespace, agent),
        "replies": replies_topic(namespace, agent),
        "deadLetter": dead_letter_topic(namespace, agent),
        "tasks": tasks_topic(namespace, agent),
    }
