"""Reconciling one Tool: run its MCP server (when ``mcp.server`` is set), ask it which
tools it offers, and report ``endpoint``, ``discoveredTools`` and the conditions.

A failed discovery keeps the tools listed last time (agents keep working with a server
that blips) and turns ``Discovered`` False with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus_api.rules import describe_errors
from chorus_api.tool import Tool
from pydantic import ValidationError

from chorus_operator import kinds
from chorus_operator.discovery import DiscoveryError, OfferedTool, discover
from chorus_operator.model.errors import ModelError, SpecInvalid
from chorus_operator.model.inputs import ToolInputs
from chorus_operator.model.labels import TOOL_LABEL
from chorus_operator.model.tool import build_tool
from chorus_operator.reconcile.common import (
    Context,
    Outcome,
    apply_children,
    new_owner,
    prune_children,
    secret_exists,
    secret_value,
    write_status,
)
from chorus_operator.status import (
    FALSE,
    TRUE,
    Condition,
    aspect_condition,
    child_health,
    merge_conditions,
    with_ready,
)

DISCOVERY_TIMEOUT = 10.0
"""At most this long for one ``tools/list`` (a Tool's ``timeoutSeconds`` is per call)."""


def parse_tool(body: Mapping[str, Any]) -> Tool:
    """The Tool in ``body``; a body the API models refuse is :class:`SpecInvalid`."""
    try:
        return Tool.model_validate(dict(body))
    except ValidationError as exc:
        meta = body.get("metadata") or {}
        who = f"tool {meta.get('namespace')}/{meta.get('name')}"
        problems = "; ".join(describe_errors(exc))
        raise SpecInvalid("Ready", "InvalidSpec", f"{who}: {problems}") from None


def _secret_names(tool: Tool) -> set[str]:
    names: set[str] = set()
    if tool.spec.mcp.auth is not None:
        names.add(tool.spec.mcp.auth.bearer_token_secret_ref.name)
    for env in tool.spec.mcp.server.env if tool.spec.mcp.server is not None else ():
        if env.value_from is not None and env.value_from.secret_key_ref is not None:
            names.add(env.value_from.secret_key_ref.name)
    return names


async def resolve_tool(ctx: Context, tool: Tool, uid: str) -> ToolInputs:
    """Reads what ``tool`` refers to (its Secrets) into the model's inputs."""
    namespace = tool.metadata.namespace or ""
    present = {n: await secret_exists(ctx, namespace, n) for n in sorted(_secret_names(tool))}
    return ToolInputs(tool=tool, uid=uid, settings=ctx.model_settings, secrets_present=present)


async def _discover(ctx: Context, tool: Tool, endpoint: str) -> list[OfferedTool]:
    token = None
    auth = tool.spec.mcp.auth
    if auth is not None:
        ref = auth.bearer_token_secret_ref
        token = await secret_value(ctx, tool.metadata.namespace or "", ref.name, ref.key)
        if token is None:
            raise DiscoveryError(f"secret {ref.name!r} has no key {ref.key!r}")
    timeout = min(DISCOVERY_TIMEOUT, float(tool.spec.timeout_seconds))
    return await discover(endpoint, token=token, timeout=timeout)


async def reconcile_tool(ctx: Context, body: Mapping[str, Any]) -> Outcome:
    """Makes the Tool in ``body`` real, lists its tools, and reports; writes what changed."""
    meta = body.get("metadata") or {}
    namespace, name = meta["namespace"], meta["name"]
    generation = meta.get("generation")
    old_status = dict(body.get("status") or {})
    old_conditions = old_status.get("conditions") or []
    who = f"tool {namespace}/{name}"
    try:
        tool = parse_tool(body)
        plan = build_tool(await resolve_tool(ctx, tool, meta.get("uid", "")))
        fresh = new_owner(body, "endpoint")
        live, written = await apply_children(ctx, plan.children, new_owner=fresh)
    except ModelError as error:
        # A Tool's workload is its server: report a refused child there.
        kind = "ServerReady" if error.condition_type == "WorkloadReady" else error.condition_type
        conditions = with_ready([Condition(kind, FALSE, error.reason, error.message)], who)
        new_status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(conditions, old_conditions, generation=generation),
        }
        changes = await write_status(ctx, kinds.TOOL, namespace, name, old_status, new_status)
        return Outcome(error=error, transitions=changes, status=new_status)

    written += await prune_children(
        ctx,
        owner_namespace=namespace,
        selectors=[(namespace, {TOOL_LABEL: name})],
        children=plan.children,
        new_owner=fresh,
    )
    conditions = []
    if tool.spec.mcp.server is not None:
        healths = [child_health(obj, kind, n) for kind, n, obj in live if kind == "Deployment"]
        server = aspect_condition(
            "ServerReady", healths, none_reason="NoServer", none_message="no server"
        )
        conditions.append(server)
    discovered = old_status.get("discoveredTools")
    count = old_status.get("discoveredToolCount")
    server_down = bool(conditions) and conditions[0].status != TRUE
    try:
        if server_down:
            raise DiscoveryError("waiting for the server to become available")
        offered = await _discover(ctx, tool, plan.endpoint)
    except DiscoveryError as exc:
        conditions.append(Condition("Discovered", FALSE, "DiscoveryFailed", f"{who}: {exc}"))
    else:
        discovered = [
            {"name": t.name, **({"description": t.description} if t.description else {})}
            for t in offered
        ]
        count = len(discovered)
        conditions.append(
            Condition("Discovered", TRUE, "Listed", f"{who}: the server lists {count} tools")
        )
    conditions = with_ready(conditions, who)
    new_status = {
        "observedGeneration": generation,
        "conditions": merge_conditions(conditions, old_conditions, generation=generation),
        "endpoint": plan.endpoint,
    }
    if count is not None:
        new_status["discoveredTools"] = discovered or []
        new_status["discoveredToolCount"] = count
    changes = await write_status(ctx, kinds.TOOL, namespace, name, old_status, new_status)
    return Outcome(error=None, transitions=changes, status=new_status, written=written)
