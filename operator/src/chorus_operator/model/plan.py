"""What the model builds: the desired children of an Agent or a Tool, and what to report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chorus_api.runtime import RuntimeConfig

Manifest = dict[str, Any]


@dataclass(frozen=True)
class AgentPlan:
    """The desired state of one Agent.

    ``children`` are full manifests (``apiVersion``, ``kind``, ``metadata.namespace``,
    labels, owner references where allowed) in apply order: identity and access first,
    then topics, then the workload, streams, scaling and network policy. An object of a
    kind the Agent had before but that is not listed here must be deleted.
    ``config_hash`` is the hash on the pod template (changes exactly when the runtime
    config, the card or the pod's spec inputs change). ``topics`` is the status summary
    (``inbox``, ``replies``, ``deadLetter``).
    """

    children: tuple[Manifest, ...]
    config_hash: str
    runtime_config: RuntimeConfig
    agent_card: Mapping[str, Any]
    topics: Mapping[str, str]
    remote_children: tuple[Manifest, ...] = field(default=())
    """The children outside the Agent's namespace (no owner reference): the reconcile
    layer deletes them from its finalizer (see :mod:`chorus_operator.model.cleanup`)."""


@dataclass(frozen=True)
class ToolPlan:
    """The desired state of one Tool: its children (empty for a remote server) and the URL
    agents use."""

    children: tuple[Manifest, ...]
    endpoint: str
