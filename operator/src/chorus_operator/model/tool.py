"""The desired state of a Tool: the MCP server's Deployment and Service when the operator
runs it (``mcp.server``), nothing for a remote one (``mcp.url``); the endpoint either way."""

from __future__ import annotations

from typing import Any

from chorus_api.tool import McpServer, Tool

from chorus_operator.model.errors import DependencyNotReady, SpecInvalid
from chorus_operator.model.inputs import ResolvedTool, ToolInputs
from chorus_operator.model.labels import child_name, owner_reference, tool_labels, tool_selector
from chorus_operator.model.plan import Manifest, ToolPlan
from chorus_operator.model.workload import resources_manifest, restricted_security_context

BEARER_TOKEN_ENV = "MCP_BEARER_TOKEN"
"""The env var a server the operator runs finds the bearer token in, to check requests."""


def server_name(tool: str) -> str:
    """The Deployment and Service of the server Tool ``tool`` runs: ``<tool>-mcp``."""
    return child_name(tool, "mcp")


def tool_endpoint(tool: Tool) -> str:
    """The URL agents use: ``mcp.url``, or ``http://<tool>-mcp.<ns>.svc:<port><path>``."""
    mcp = tool.spec.mcp
    if mcp.server is None:
        assert mcp.url is not None  # the model's own rule: exactly one of url and server
        return mcp.url
    return (
        f"http://{server_name(tool.metadata.name)}.{tool.metadata.namespace}.svc:"
        f"{mcp.server.port}{mcp.server.path}"
    )


def build_tool(inputs: ToolInputs) -> ToolPlan:
    """The children and endpoint of ``inputs.tool``; SecretMissing is DependencyNotReady."""
    tool = inputs.tool
    name, namespace = tool.metadata.name, tool.metadata.namespace
    if namespace is None:
        raise SpecInvalid(
            "Ready", "NamespaceMissing", f"tool {name}: metadata.namespace is not set"
        )
    who = f"tool {namespace}/{name}"
    server = tool.spec.mcp.server
    secrets = []
    if tool.spec.mcp.auth is not None and server is not None:
        secrets.append(
            ("spec.mcp.auth.bearerTokenSecretRef", tool.spec.mcp.auth.bearer_token_secret_ref.name)
        )
    for env in server.env if server is not None else ():
        if env.value_from is not None and env.value_from.secret_key_ref is not None:
            secrets.append((f"spec.mcp.server.env[{env.name}]", env.value_from.secret_key_ref.name))
    missing = [(what, s) for what, s in secrets if not inputs.secrets_present.get(s, True)]
    if missing:
        raise DependencyNotReady(
            "ServerReady",
            "SecretMissing",
            "; ".join(f"{who}: {what}: secret {s!r} does not exist" for what, s in missing),
        )
    endpoint = tool_endpoint(tool)
    if server is None:
        return ToolPlan(children=(), endpoint=endpoint)
    owner = owner_reference("Tool", name, inputs.uid)
    labels = tool_labels(name, "mcp-server")
    child = server_name(name)
    return ToolPlan(
        children=(
            _deployment(tool, server, child, namespace, labels, owner),
            _service(server, child, namespace, labels, owner, name),
        ),
        endpoint=endpoint,
    )


def _meta(
    name: str, namespace: str, labels: dict[str, str], owner: dict[str, Any]
) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [owner]}


def _deployment(
    tool: Tool,
    server: McpServer,
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner: dict[str, Any],
) -> Manifest:
    env: list[dict[str, Any]] = [
        e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in server.env
    ]
    if tool.spec.mcp.auth is not None:
        ref = tool.spec.mcp.auth.bearer_token_secret_ref
        env.append(
            {
                "name": BEARER_TOKEN_ENV,
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    container: dict[str, Any] = {
        "name": "mcp",
        "image": server.image,
        "ports": [{"name": "mcp", "containerPort": server.port, "protocol": "TCP"}],
        # MCP has no health path; an open port is what the server promises.
        "readinessProbe": {"tcpSocket": {"port": "mcp"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "mcp"}, "periodSeconds": 10},
        "resources": resources_manifest(server.resources),
        "securityContext": restricted_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if server.args:
        container["args"] = list(server.args)
    if env:
        container["env"] = env
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels, owner),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": tool_selector(tool.metadata.name)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def _service(
    server: McpServer,
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner: dict[str, Any],
    tool: str,
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, labels, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": tool_selector(tool),
            "ports": [{"name": "mcp", "port": server.port, "targetPort": "mcp", "protocol": "TCP"}],
        },
    }


def resolve_tool(tool: Tool) -> ResolvedTool:
    """What an Agent needs of ``tool``: its endpoint, the tools it listed (``None`` while
    not discovered), its token reference, and where its pods are when the operator runs it."""
    server = tool.spec.mcp.server
    status = tool.status
    discovered = (
        tuple(t.name for t in status.discovered_tools)
        if status is not None and status.discovered_tool_count is not None
        else None
    )
    auth = tool.spec.mcp.auth
    return ResolvedTool(
        name=tool.metadata.name,
        namespace=tool.metadata.namespace or "",
        endpoint=tool_endpoint(tool),
        offered=discovered,
        bearer_token_secret=auth.bearer_token_secret_ref if auth is not None else None,
        timeout_seconds=float(tool.spec.timeout_seconds),
        pod_labels=tool_selector(tool.metadata.name) if server is not None else None,
        port=server.port if server is not None else None,
    )
