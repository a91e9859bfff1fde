"""Labels, names and owner references every child carries.

Kubernetes object names must be DNS-1123; Kafka topic names need not be (``_``, upper
case), so KafkaTopics get a sanitised ``metadata.name`` (with a hash suffix whenever it
differs from the topic) and the real name in ``spec.topicName``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from chorus_api.common import API_VERSION

PART_OF = "chorus"
MANAGER = "chorus-operator"
AGENT_LABEL = "chorus.dev/agent"
"""On an Agent's children: the Agent's name (same namespace) or ``<namespace>.<name>``."""
TOOL_LABEL = "chorus.dev/tool"
OWNER_NAMESPACE_LABEL = "chorus.dev/owner-namespace"
"""On children in another namespace than their Agent: the Agent's namespace."""
OWNER_NAME_LABEL = "chorus.dev/owner-name"
"""On children in another namespace than their Agent: the Agent's name."""
CONFIG_HASH_ANNOTATION = "chorus.dev/config-hash"
STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster"

_NOT_DNS = re.compile(r"[^a-z0-9.-]+")


def common_labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels of one child."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGER,
    }


def agent_labels(namespace: str, agent: str, component: str, *, remote: bool) -> dict[str, str]:
    """Labels of an Agent's child; ``remote`` children live outside the Agent's namespace."""
    labels = common_labels("chorus-agent", agent, component)
    if remote:
        labels[AGENT_LABEL] = f"{namespace}.{agent}"
        labels[OWNER_NAMESPACE_LABEL] = namespace
        labels[OWNER_NAME_LABEL] = agent
    else:
        labels[AGENT_LABEL] = agent
    return labels


def agent_selector(agent: str) -> dict[str, str]:
    """The labels that select the agent's pods (stable: a Deployment selector is immutable)."""
    return {"app.kubernetes.io/name": "chorus-agent", "app.kubernetes.io/instance": agent}


def tool_labels(tool: str, component: str) -> dict[str, str]:
    """Labels of a Tool's child."""
    return {**common_labels("chorus-tool", tool, component), TOOL_LABEL: tool}


def tool_selector(tool: str) -> dict[str, str]:
    """The labels that select the pods of the MCP server a Tool runs."""
    return {"app.kubernetes.io/name": "chorus-tool", "app.kubernetes.io/instance": tool}


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller owner reference to a Chorus object (garbage collection)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def short_hash(text: str, length: int = 8) -> str:
    """A stable hex digest of ``text`` for name suffixes."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def dns_name(text: str, *, max_length: int = 253) -> str:
    """``text`` as a DNS-1123 subdomain; a hash suffix keeps distinct texts distinct.

    Unchanged when ``text`` already is one (lower case letters, digits, ``-`` and ``.``,
    alphanumeric at both ends, each dot-separated label non-empty).
    """
    if _is_dns_subdomain(text, max_length):
        return text
    base = _NOT_DNS.sub("-", text.lower())
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"-*\.-*", ".", base).strip(".-") or "x"
    suffix = short_hash(text)
    base = base[: max_length - len(suffix) - 1].rstrip(".-")
    return f"{base}-{suffix}"


def _is_dns_subdomain(text: str, max_length: int) -> bool:
    if not text or len(text) > max_length:
        return False
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    return re.fullmatch(rf"{label}(\.{label})*", text) is not None


def child_name(base: str, suffix: str, *, max_length: int = 63) -> str:
    """``<base>-<suffix>`` as a DNS-1035 label of at most ``max_length`` characters; when
    too long, shortened with a hash of the full name so distinct names stay distinct."""
    full = f"{base}-{suffix}"
    if len(full) <= max_length:
        return full
    digest = short_hash(full, 6)
    return f"{full[: max_length - len(digest) - 1].rstrip('-')}-{digest}"
