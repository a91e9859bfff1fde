"""The names of the platform's own Kafka topics, consumer groups and transactional ids.

Pure functions, shared by the operator (which creates the topics and grants the ACLs)
and the agent runtime (which reads and writes them), so both sides always agree.
DESIGN section 5:

- per agent: ``chorus.<namespace>.<agent>.inbox`` (A2A requests to it), ``.replies``
  (answers to the requests it sent), ``.dlq`` (what it could not process) and
  ``.tasks`` (its A2A tasks, compacted, key = task id: they survive a restart);
- per namespace: ``chorus.<namespace>.audit``;
- for the whole installation: ``chorus.agent-cards`` (compacted, key ``<namespace>/<agent>``).

A namespace and an agent name are DNS labels (no dots), so a topic name splits back
into its parts unambiguously.
"""

from __future__ import annotations

import re

PREFIX = "chorus"
AGENT_CARDS_TOPIC = f"{PREFIX}.agent-cards"
"""The discovery registry: one compacted record per agent, its A2A AgentCard."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check(namespace: str, agent: str | None = None) -> None:
    if len(namespace) > 63 or _NAMESPACE.fullmatch(namespace) is None:
        raise ValueError(f"not a Kubernetes namespace name (a DNS-1123 label): {namespace!r}")
    if agent is not None and (len(agent) > 63 or _DNS_LABEL.fullmatch(agent) is None):
        raise ValueError(f"not an agent name (a DNS-1035 label): {agent!r}")


def agent_prefix(namespace: str, agent: str) -> str:
    """``chorus.<namespace>.<agent>``: every per-agent name starts with it."""
    _check(namespace, agent)
    return f"{PREFIX}.{namespace}.{agent}"


def inbox_topic(namespace: str, agent: str) -> str:
    """Where A2A requests to the agent arrive."""
    return f"{agent_prefix(namespace, agent)}.inbox"


def replies_topic(namespace: str, agent: str) -> str:
    """Where answers to the requests the agent sent arrive."""
    return f"{agent_prefix(namespace, agent)}.replies"


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
