"""The kopf handlers: each body is a line or two that calls :class:`Runtime`.

:func:`register` binds them to a registry, so a process (or a test) can build one.

- Agents and Tools: create, update, resume reconcile; a timer re-checks them
  periodically; a deleted Agent runs the cleanup finalizer (only when it has children
  that need one: see :func:`chorus_operator.model.cleanup.needs_finalizer`).
- Children (labelled ``app.kubernetes.io/managed-by: chorus-operator``): any change or
  deletion re-reconciles their owner, which restores drift and updates status.
- Tools: any change re-reconciles the Agents that name them (a kopf index), so a Tool
  created after its Agent, or deleted and recreated, is picked up at once.
- An Agent arriving or leaving changes no other Agent: the ACL that lets an Agent call
  its peers is one topic prefix (:func:`chorus_api.topics.a2a_prefix`), not a list of them.

The model's :class:`SpecInvalid` becomes ``kopf.PermanentError`` (no hot retries: only an
edit helps), :class:`DependencyNotReady` ``kopf.TemporaryError`` with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from chorus_api.common import GROUP, VERSION

from chorus_operator import kinds
from chorus_operator.cache import kept_copy
from chorus_operator.model.cleanup import needs_finalizer
from chorus_operator.model.errors import DependencyNotReady, SpecInvalid
from chorus_operator.model.labels import (
    AGENT_LABEL,
    MANAGER,
    OWNER_NAME_LABEL,
    OWNER_NAMESPACE_LABEL,
    TOOL_LABEL,
)
from chorus_operator.reconcile.common import Outcome
from chorus_operator.runtime import Runtime

MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
WATCHED_CHILDREN = (
    kinds.DEPLOYMENT,
    kinds.SERVICE,
    kinds.CONFIG_MAP,
    kinds.SERVICE_ACCOUNT,
    kinds.KAFKA_TOPIC,
    kinds.KAFKA_USER,
    kinds.FLINK_DEPLOYMENT,
    kinds.HPA,
    kinds.SCALED_OBJECT,
    kinds.NETWORK_POLICY,
)
"""Children whose changes re-reconcile their owner (drift, status)."""


def watched_children(namespaces: tuple[str, ...], kafka_namespace: str) -> tuple[kinds.Kind, ...]:
    """The child kinds to watch: KafkaTopics and KafkaUsers only when the operator watches
    the Kafka namespace (every namespace, or it is listed); otherwise the periodic
    re-check notices their changes, and the operator needs no rights on them elsewhere."""
    if not namespaces or kafka_namespace in namespaces:
        return WATCHED_CHILDREN
    return tuple(k for k in WATCHED_CHILDREN if k not in (kinds.KAFKA_TOPIC, kinds.KAFKA_USER))


def backoff(retry: int) -> float:
    """Seconds before retrying a dependency that is not ready: 5, 10, 20, ... up to 300."""
    return float(min(300, 5 * 2 ** min(retry, 6)))


def raise_for(outcome: Outcome, retry: int) -> None:
    """Turns the model's refusal into kopf's errors (the condition is already written)."""
    if isinstance(outcome.error, SpecInvalid):
        raise kopf.PermanentError(outcome.error.message)
    if isinstance(outcome.error, DependencyNotReady):
        raise kopf.TemporaryError(outcome.error.message, delay=backoff(retry))


def owner_of(labels: Mapping[str, str], namespace: str) -> tuple[str, str, str] | None:
    """``(kind, namespace, name)`` of the Agent or Tool a child belongs to, from its labels."""
    if OWNER_NAMESPACE_LABEL in labels and OWNER_NAME_LABEL in labels:
        return "Agent", labels[OWNER_NAMESPACE_LABEL], labels[OWNER_NAME_LABEL]
    if AGENT_LABEL in labels and "." not in labels[AGENT_LABEL]:
        return "Agent", namespace, labels[AGENT_LABEL]
    if TOOL_LABEL in labels:
        return "Tool", namespace, labels[TOOL_LABEL]
    return None


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Registers every handler on ``registry``, bound to ``runtime``."""
    settings = runtime.ctx.settings
    model_settings = runtime.ctx.model_settings
    interval = settings.recheck_interval

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A custom registry gets no default login handlers: kubeconfig, else in-cluster.
        return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)

    @kopf.on.resume(GROUP, VERSION, "agents", id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, "agents", id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, "agents", id="reconcile", registry=registry)
    async def agent_changed(body: kopf.Body, retry: int, **_: Any) -> None:
        raise_for(await runtime.agent(body), retry)

    @kopf.timer(
        GROUP,
        VERSION,
        "agents",
        interval=interval,
        initial_delay=interval,
        id="recheck",
        registry=registry,
    )
    async def agent_recheck(body: kopf.Body, **_: Any) -> None:
        runtime.schedule("Agent", *_ident(body))

    def cleanup_needed(body: kopf.Body, **_: Any) -> bool:
        # A cheap, spec-free stand-in for the plan: every Agent has topics, labelled so.
        topic = {
            "apiVersion": kinds.KAFKA_TOPIC.api_version,
            "kind": "KafkaTopic",
            "metadata": {
                "name": "probe",
                "namespace": model_settings.kafka_namespace,
                "labels": {AGENT_LABEL: str(body.metadata.name)},
            },
        }
        return needs_finalizer(
            [topic], model_settings, agent_namespace=str(body.metadata.namespace)
        )

    @kopf.on.delete(GROUP, VERSION, "agents", when=cleanup_needed, id="cleanup", registry=registry)
    async def agent_deleted(body: kopf.Body, **_: Any) -> None:
        await runtime.cleanup(body)

    @kopf.index(GROUP, VERSION, "agents", id="agents_by_tool", registry=registry)
    def agents_by_tool(body: kopf.Body, **_: Any) -> dict[Any, str]:
        namespace, name = _ident(body)
        return {(namespace, b["ref"]): name for b in body.spec.get("tools", [])}

    @kopf.on.event(GROUP, VERSION, "agents", id="remember", registry=registry)
    async def agent_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        _remember(runtime, kinds.AGENT, body, type)

    @kopf.on.resume(GROUP, VERSION, "tools", id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, "tools", id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, "tools", id="reconcile", registry=registry)
    async def tool_changed(body: kopf.Body, retry: int, **_: Any) -> None:
        raise_for(await runtime.tool(body), retry)

    @kopf.timer(
        GROUP,
        VERSION,
        "tools",
        interval=settings.discovery_interval,
        initial_delay=settings.discovery_interval,
        id="recheck",
        registry=registry,
    )
    async def tool_recheck(body: kopf.Body, **_: Any) -> None:
        runtime.schedule("Tool", *_ident(body))

    @kopf.on.event(GROUP, VERSION, "tools", id="dependents", registry=registry)
    async def tool_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        # Even the echo of the Tool's own status write: it is what its Agents wait for.
        _remember(runtime, kinds.TOOL, body, type)
        namespace, name = _ident(body)
        index: kopf.Index[Any, str] = kwargs["agents_by_tool"]
        for agent in index.get((namespace, name), ()):
            runtime.schedule("Agent", namespace, agent)

    for child in watched_children(settings.namespaces, settings.kafka_namespace):
        kopf.on.event(
            child.api_version,
            child.plural,
            labels=MANAGED,
            registry=registry,
            id=f"child-{child.plural}",
        )(_child_event(runtime, child))


def _ident(body: kopf.Body) -> tuple[str, str]:
    return str(body.metadata.namespace or ""), str(body.metadata.name)


def _remember(runtime: Runtime, kind: kinds.Kind, body: kopf.Body, type: str | None) -> bool:
    """Keeps the newest version of a watched object in the store; returns whether this
    event told the operator something new (not the echo of its own write)."""
    store = runtime.ctx.store
    if type == "DELETED":
        store.forget(kind.api_version, kind.kind, body)
        if kind in (kinds.AGENT, kinds.TOOL):
            runtime.diffbase.forget(body)
            runtime.forget(kind.kind, *_ident(body))
        return True
    return store.put(kind.api_version, kind.kind, body, keep=kept_copy)


def _child_event(runtime: Runtime, kind: kinds.Kind) -> Any:
    async def child_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        if not _remember(runtime, kind, body, type) and type is not None:
            return  # the operator's own write coming back: nothing new
        owner = owner_of(dict(body.metadata.labels), _ident(body)[0])
        if owner is not None:
            runtime.schedule(*owner)
        # A shared topic has no owner: re-reconcile the Agents that publish to it.
        for namespace, name in sorted(runtime.ctx.sharers.get(_ident(body), ())):
            runtime.schedule("Agent", namespace, name)

    return child_event
