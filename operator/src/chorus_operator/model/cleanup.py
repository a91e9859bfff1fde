"""What the reconcile layer's finalizer must do when an Agent is deleted.

Owner references garbage-collect children in the Agent's namespace. They cannot point
across namespaces, so children in the Kafka namespace (KafkaTopics, KafkaUsers, the Role
and RoleBinding) are labelled with the Agent (:func:`remote_selector`) and deleted by the
finalizer. With the ``retain`` topic policy every KafkaTopic is first detached from
Strimzi (``strimzi.io/managed: "false"``), so deleting it keeps the Kafka topic; that holds
in the Agent's namespace too, where garbage collection would otherwise delete the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.labels import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL

FINALIZER = "chorus.dev/cleanup"
DETACH_PATCH: Mapping[str, Any] = {"metadata": {"annotations": {"strimzi.io/managed": "false"}}}
"""The merge patch that makes Strimzi let go of a KafkaTopic without deleting its topic."""


@dataclass(frozen=True)
class CleanupStep:
    """One object to clean up: apply ``patch`` (a merge patch) if set, then delete it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    patch: Mapping[str, Any] | None


def remote_selector(namespace: str, agent: str) -> dict[str, str]:
    """The labels of an Agent's children outside its namespace (to list them on delete)."""
    return {OWNER_NAMESPACE_LABEL: namespace, OWNER_NAME_LABEL: agent}


def cleanup_steps(
    children: Iterable[Mapping[str, Any]], settings: OperatorSettings, *, agent_namespace: str
) -> tuple[CleanupStep, ...]:
    """The steps for ``children`` (an :class:`AgentPlan`'s, or those the reconcile layer
    listed by :func:`remote_selector`), in reverse apply order; empty: no finalizer needed.

    Children without owner references in another namespace are deleted; KafkaTopics are
    detached first under ``retain``; shared topics (no agent label) are never touched.
    """
    steps = []
    for child in children:
        metadata = child["metadata"]
        labels = metadata.get("labels") or {}
        remote = metadata.get("namespace") != agent_namespace
        topic = child["kind"] == "KafkaTopic"
        if OWNER_NAME_LABEL not in labels and "chorus.dev/agent" not in labels:
            continue
        if not remote and not (topic and settings.topic_deletion_policy == "retain"):
            continue
        patch = DETACH_PATCH if topic and settings.topic_deletion_policy == "retain" else None
        steps.append(
            CleanupStep(
                api_version=child["apiVersion"],
                kind=child["kind"],
                namespace=metadata["namespace"],
                name=metadata["name"],
                patch=patch,
            )
        )
    return tuple(reversed(steps))


def needs_finalizer(
    children: Iterable[Mapping[str, Any]], settings: OperatorSettings, *, agent_namespace: str
) -> bool:
    """Whether deleting the Agent needs the finalizer (some child needs a cleanup step)."""
    return bool(cleanup_steps(children, settings, agent_namespace=agent_namespace))
