"""Reconciling one Agent: resolve what it refers to, build (model), apply, derive status.

:func:`resolve_agent` reads the cluster into :class:`AgentInputs` (the Tools it names,
the Secrets it needs, whether KEDA is installed); the model builds the
children from them alone; :func:`reconcile_agent` applies them, prunes leftovers and
writes status when it changed. :func:`cleanup_agent` is the finalizer's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus_api.agent import Agent
from chorus_api.rules import describe_errors
from chorus_api.tool import Tool
from lightkube import ApiError
from pydantic import ValidationError

from chorus_operator import apply, kinds
from chorus_operator.model.agent import build_agent
from chorus_operator.model.cleanup import cleanup_steps, remote_selector
from chorus_operator.model.errors import DependencyNotReady, ModelError, SpecInvalid
from chorus_operator.model.inputs import AgentInputs, ResolvedTool
from chorus_operator.model.kafka import OUTPUT_TOPIC, SHARED_LABEL
from chorus_operator.model.labels import AGENT_LABEL, agent_selector, tool_selector
from chorus_operator.model.tool import tool_endpoint
from chorus_operator.reconcile.common import (
    Context,
    Outcome,
    apply_children,
    condition_of,
    new_owner,
    prune_children,
    secret_exists,
    write_status,
)
from chorus_operator.status import (
    FAILED,
    Condition,
    agent_conditions,
    blocked_conditions,
    child_health,
    merge_conditions,
    phase,
    with_ready,
)

KEDA_CRD = "scaledobjects.keda.sh"


def parse_agent(body: Mapping[str, Any]) -> Agent:
    """The Agent in ``body``; a body the API models refuse is :class:`SpecInvalid`."""
    try:
        return Agent.model_validate(dict(body))
    except ValidationError as exc:
        meta = body.get("metadata") or {}
        who = f"agent {meta.get('namespace')}/{meta.get('name')}"
        problems = "; ".join(describe_errors(exc))
        raise SpecInvalid("Ready", "InvalidSpec", f"{who}: {problems}") from None


def resolved_tool(tool: Tool) -> ResolvedTool:
    """What an Agent needs to know of ``tool``: its endpoint and the tools it offers."""
    status = tool.status
    namespace = tool.metadata.namespace or ""
    endpoint = status.endpoint if status is not None and status.endpoint else None
    if endpoint is None:
        endpoint = tool_endpoint(tool)
    offered = None
    if status is not None and status.discovered_tool_count is not None:
        offered = tuple(t.name for t in status.discovered_tools)
    auth = tool.spec.mcp.auth
    server = tool.spec.mcp.server
    return ResolvedTool(
        name=tool.metadata.name,
        namespace=namespace,
        endpoint=endpoint,
        offered=offered,
        bearer_token_secret=auth.bearer_token_secret_ref if auth is not None else None,
        timeout_seconds=float(tool.spec.timeout_seconds),
        pod_labels=tool_selector(tool.metadata.name) if server is not None else None,
        port=server.port if server is not None else None,
    )


async def _tool(ctx: Context, namespace: str, name: str) -> ResolvedTool | None:
    body = ctx.store.get(kinds.TOOL.api_version, "Tool", namespace, name)
    if body is None:
        body = await apply.get(
            ctx.client, apply.ObjectRef(kinds.TOOL.api_version, "Tool", namespace, name)
        )
    if body is None:
        return None
    try:
        return resolved_tool(Tool.model_validate(body))
    except ValidationError:
        return None  # a Tool the models refuse reports that on itself; here it is missing


async def keda_available(ctx: Context) -> bool:
    """Whether KEDA's ScaledObject CRD is installed (asked at most every ``CRD_TTL``)."""
    fresh, known = ctx.crds.get(KEDA_CRD)
    if fresh and known is not None:
        return known
    ref = apply.ObjectRef(kinds.CRD.api_version, kinds.CRD.kind, None, KEDA_CRD)
    try:
        found = await apply.get(ctx.client, ref) is not None
    except ApiError as exc:
        if exc.status.code != 403:
            raise
        found = False  # not allowed to look: build the HPA, which always works
    ctx.crds.put(KEDA_CRD, found)
    return found


async def kafka_cluster(ctx: Context) -> dict[str, Any] | None:
    """The Strimzi ``Kafka``; a Ready one is trusted for ``KAFKA_TTL`` seconds."""
    key = (ctx.settings.kafka_namespace, ctx.settings.kafka_cluster)
    fresh, kafka = ctx.kafka.get(key)
    if fresh and kafka is not None:
        return kafka
    ref = apply.ObjectRef(kinds.KAFKA.api_version, "Kafka", *key)
    kafka = await apply.get(ctx.client, ref)
    if kafka is not None and (condition_of(kafka, "Ready") or {}).get("status") == "True":
        ctx.kafka.put(key, kafka)
    return kafka


async def resolve_agent(ctx: Context, agent: Agent, uid: str) -> AgentInputs:
    """Reads everything ``agent`` refers to into the model's inputs (no writes)."""
    namespace = agent.metadata.namespace or ""
    tools = {b.ref: await _tool(ctx, namespace, b.ref) for b in agent.spec.tools}
    secrets: set[str] = set()
    if agent.spec.model is not None and agent.spec.model.api_key_secret_ref is not None:
        secrets.add(agent.spec.model.api_key_secret_ref.name)
    for tool in tools.values():
        if tool is not None and tool.bearer_token_secret is not None:
            secrets.add(tool.bearer_token_secret.name)
    present = {name: await secret_exists(ctx, namespace, name) for name in sorted(secrets)}
    return AgentInputs(
        agent=agent,
        uid=uid,
        tools=tools,
        settings=ctx.model_settings,
        keda_available=await keda_available(ctx),
        secrets_present=present,
    )


def _kafka_condition(kafka: Mapping[str, Any] | None, settings: Context) -> Condition | None:
    where = f"{settings.settings.kafka_namespace}/{settings.settings.kafka_cluster}"
    if kafka is None:
        return Condition("TopicsReady", "False", "KafkaNotFound", f"Kafka {where} does not exist")
    ready = condition_of(kafka, "Ready")
    if ready is None or ready.get("status") != "True":
        message = (ready or {}).get("message") or "not ready"
        return Condition("TopicsReady", "False", "KafkaNotReady", f"Kafka {where}: {message}")
    return None


async def reconcile_agent(ctx: Context, body: Mapping[str, Any]) -> Outcome:
    """Makes the Agent in ``body`` real and reports on it; writes only what changed.

    A spec the model refuses (:class:`SpecInvalid`) or a dependency it lacks
    (:class:`DependencyNotReady`) is reported as a condition and returned in
    ``Outcome.error``; children that exist are kept (a typo must not take a running agent
    down), none are made.
    """
    meta = body.get("metadata") or {}
    namespace, name = meta["namespace"], meta["name"]
    generation = meta.get("generation")
    old_status = dict(body.get("status") or {})
    old_conditions = old_status.get("conditions") or []
    try:
        agent = parse_agent(body)
        inputs = await resolve_agent(ctx, agent, meta.get("uid", ""))
        plan = build_agent(inputs)
        # Before applying: the first event of a shared topic made below must find us.
        for child in plan.children:
            if (child["metadata"].get("labels") or {}).get(SHARED_LABEL) == OUTPUT_TOPIC:
                key = (child["metadata"]["namespace"], child["metadata"]["name"])
                ctx.sharers.setdefault(key, set()).add((namespace, name))
        fresh = new_owner(body, "topics")
        live, written = await apply_children(ctx, plan.children, new_owner=fresh)
    except ModelError as error:
        conditions = with_ready(
            blocked_conditions(error.condition_type, error.reason, error.message),
            f"agent {namespace}/{name}",
        )
        failed = isinstance(error, SpecInvalid)
        new_status = {
            "phase": FAILED if failed else _waiting_phase(old_status),
            "observedGeneration": generation,
            "conditions": merge_conditions(conditions, old_conditions, generation=generation),
        }
        changes = await write_status(ctx, kinds.AGENT, namespace, name, old_status, new_status)
        return Outcome(error=error, transitions=changes, status=new_status)

    written += await prune_children(
        ctx,
        owner_namespace=namespace,
        selectors=[
            (namespace, {AGENT_LABEL: name}),
            *(
                [(ctx.settings.kafka_namespace, remote_selector(namespace, name))]
                if ctx.settings.kafka_namespace != namespace
                else []
            ),
        ],
        children=plan.children,
        new_owner=fresh,
    )
    kafka = await kafka_cluster(ctx)
    own = [child for child in live if _owned(child, plan.children)]
    conditions = [Condition("ToolsResolved", "True", "Resolved", _tools_message(agent))]
    aspects = agent_conditions(own, await _pods_if_unavailable(ctx, namespace, name, own))
    kafka_problem = _kafka_condition(kafka, ctx)
    if kafka_problem is not None:
        aspects = [kafka_problem if c.type == "TopicsReady" else c for c in aspects]
    conditions = with_ready([*conditions, *aspects], f"agent {namespace}/{name}")
    failed = any(
        c.reason in {"JobFailed", "DeploymentFailed", "ProgressDeadlineExceeded"}
        for c in conditions
    )
    new_status = {
        "phase": phase(conditions, failed=failed, previous=old_status.get("phase")),
        "observedGeneration": generation,
        "conditions": merge_conditions(conditions, old_conditions, generation=generation),
        "topics": dict(plan.topics),
        "agentCard": dict(plan.agent_card),
    }
    changes = await write_status(ctx, kinds.AGENT, namespace, name, old_status, new_status)
    return Outcome(error=None, transitions=changes, status=new_status, written=written)


async def _pods_if_unavailable(
    ctx: Context, namespace: str, name: str, own: list[tuple[str, str, Any]]
) -> list[dict[str, Any]]:
    """The agent's pods when its Deployment is not available (to tell the kubelet's
    reason); none otherwise, so a healthy agent costs no pod list."""
    deployments = [live for kind, _, live in own if kind == "Deployment"]
    if not deployments or all(child_health(live, "Deployment", name).ready for live in deployments):
        return []
    resource = kinds.resource(kinds.POD)
    labels: dict[str, Any] = dict(agent_selector(name))
    return [
        apply.as_dict(pod)
        async for pod in ctx.client.list(resource, namespace=namespace, labels=labels)
    ]


def _owned(child: tuple[str, str, Any], children: tuple[dict[str, Any], ...]) -> bool:
    """Whether a live child is the Agent's own (shared topics, like audit, are not)."""
    kind, name, _ = child
    for manifest in children:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            labels = manifest["metadata"].get("labels") or {}
            # Its own children, and the topics it publishes or streams to (shared: it
            # needs them as much as its own); not the audit topic nor the registry.
            return AGENT_LABEL in labels or labels.get(SHARED_LABEL) == OUTPUT_TOPIC
    return False


def _tools_message(agent: Agent) -> str:
    if not agent.spec.tools:
        return "the agent uses no tools"
    return "resolved: " + ", ".join(b.ref for b in agent.spec.tools)


def _waiting_phase(old_status: Mapping[str, Any]) -> str:
    return "Degraded" if old_status.get("phase") in {"Ready", "Degraded"} else "Pending"


async def cleanup_agent(ctx: Context, body: Mapping[str, Any]) -> int:
    """The finalizer's work: detach retained topics, delete children GC cannot reach.

    Lists the Agent's children by label (not from the spec, which may no longer build),
    so what an earlier version made is cleaned up too. Returns how many steps ran.
    """
    meta = body.get("metadata") or {}
    namespace, name = meta["namespace"], meta["name"]
    found: list[dict[str, Any]] = []
    kafka_namespace = ctx.settings.kafka_namespace
    selector = (
        {AGENT_LABEL: name} if kafka_namespace == namespace else remote_selector(namespace, name)
    )
    for kind in kinds.KAFKA_SIDE_KINDS:
        for obj in await apply.list_labelled(ctx.client, kind, kafka_namespace, selector):
            found.append({**obj, "apiVersion": kind.api_version, "kind": kind.kind})
    steps = cleanup_steps(found, ctx.model_settings, agent_namespace=namespace)
    for step in steps:
        ref = apply.ObjectRef(step.api_version, step.kind, step.namespace, step.name)
        if step.patch is not None:
            await apply.merge_patch(ctx.client, ref, step.patch)
        await apply.delete(ctx.client, ref)
    return len(steps)


__all__ = [
    "DependencyNotReady",
    "cleanup_agent",
    "parse_agent",
    "reconcile_agent",
    "resolve_agent",
    "resolved_tool",
]
