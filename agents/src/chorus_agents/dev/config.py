"""The runtime config of an Agent manifest, for running it outside Kubernetes.

On a cluster the operator computes each agent's ``runtime.yaml`` from its Agent, the Tools
it refers to and its KafkaUser. Locally (the tests, ``chorus dev``) there is no operator:
:func:`runtime_config_for` makes the same :class:`~chorus_api.runtime.RuntimeConfig` from
the manifest and what the local run provides instead (the broker, where each tool server
listens). Kept in step with ``chorus_operator.model.agent``: the identity, the derived
topics, delivery, handler, instructions, model (without a key: local runs use providers
that need none, or ``apiKeyEnv``), skills, and each tool binding with its Tool's timeout.

``topic_prefix`` renames the domain topics (``trading.signals`` ->
``<prefix>trading.signals``) in ``subscribe`` and ``publish``, so runs that share a broker
do not read each other's events; the namespace keeps the platform topics apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chorus_api.agent import Agent, ScriptSource
from chorus_api.runtime import RuntimeConfig, RuntimeDelivery, parse_runtime_config
from chorus_api.tool import Tool


class LocalConfigError(ValueError):
    """The manifest cannot run locally as given (a tool without a URL, say)."""


def script_from(
    source: ScriptSource, config_maps: Mapping[str, Mapping[str, str]], where: str
) -> str:
    """The script ``model.scriptFrom`` names, from the domain's ConfigMaps."""
    ref = source.config_map_key_ref
    data = config_maps.get(ref.name)
    if data is None:
        known = ", ".join(sorted(config_maps)) or "none"
        raise LocalConfigError(
            f"{where}: model.scriptFrom.configMapKeyRef.name: no ConfigMap {ref.name!r} among "
            f"the domain's manifests (there are: {known})"
        )
    if ref.key not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise LocalConfigError(
            f"{where}: model.scriptFrom.configMapKeyRef.key: ConfigMap {ref.name} has no key "
            f"{ref.key!r} (it has: {keys})"
        )
    return data[ref.key]


def runtime_config_for(
    agent: Agent,
    bootstrap: str,
    tool_urls: Mapping[str, str],
    *,
    tools: Mapping[str, Tool] | None = None,
    config_maps: Mapping[str, Mapping[str, str]] | None = None,
    namespace: str | None = None,
    topic_prefix: str = "",
    script_file: str | None = None,
    api_key_env: str | None = None,
    http_host: str = "127.0.0.1",
    http_port: int = 0,
    instance: str | None = None,
) -> RuntimeConfig:
    """The runtime config of ``agent`` on the broker ``bootstrap`` (PLAINTEXT).

    ``tool_urls`` maps each Tool the agent refers to (``tools[].ref``) to its MCP endpoint
    (``http://127.0.0.1:8000/mcp``); ``tools`` gives the Tool resources (for their
    ``timeoutSeconds``), ``config_maps`` the data of the domain's ConfigMaps by name (a
    ``model.scriptFrom`` is read from them and goes into the config inline, as the pod would
    read it from the mounted key). ``namespace`` overrides the manifest's (default ``default``).
    ``script_file`` and ``api_key_env`` go to the model, when the agent has one.
    """
    spec = agent.spec
    ns = namespace or agent.metadata.namespace or "default"
    name = agent.metadata.name
    where = f"agent {ns}/{name}"
    tool_entries: list[dict[str, Any]] = []
    for binding in spec.tools:
        url = tool_urls.get(binding.ref)
        if url is None:
            known = ", ".join(sorted(tool_urls)) or "none"
            raise LocalConfigError(f"{where}: no URL for tool '{binding.ref}' (given: {known})")
        entry: dict[str, Any] = {"name": binding.ref, "url": url, "allow": list(binding.allow)}
        resource = (tools or {}).get(binding.ref)
        if resource is not None:
            entry["timeoutSeconds"] = resource.spec.timeout_seconds
        tool_entries.append(entry)
    document: dict[str, Any] = {
        "agent": {"namespace": ns, "name": name},
        "kafka": {"bootstrapServers": bootstrap},
        "topics": {
            "subscribe": [topic_prefix + s.topic for s in spec.subscribe],
            "publish": [topic_prefix + p.topic for p in spec.publish],
        },
        "delivery": RuntimeDelivery.of(spec.delivery).model_dump(
            mode="json", by_alias=True, exclude_defaults=True
        ),
        "tools": tool_entries,
        "skills": [
            skill.model_dump(mode="json", by_alias=True, exclude_none=True) for skill in spec.skills
        ],
        "http": {"host": http_host, "port": http_port},
    }
    if spec.description is not None:
        document["agent"]["description"] = spec.description
    if spec.handler is not None:
        document["handler"] = spec.handler
    if spec.instructions is not None:
        document["instructions"] = spec.instructions
    if spec.model is not None:
        model: dict[str, Any] = {"provider": spec.model.provider.value}
        if spec.model.name is not None:
            model["name"] = spec.model.name
        if spec.model.endpoint is not None:
            model["endpoint"] = str(spec.model.endpoint)
        if spec.model.script is not None:
            model["script"] = spec.model.script
        if spec.model.script_from is not None:
            model["script"] = script_from(spec.model.script_from, config_maps or {}, where)
        if spec.model.api_version is not None:
            model["apiVersion"] = spec.model.api_version
        if spec.model.price is not None:
            model["price"] = spec.model.price.model_dump(mode="json")
        if script_file is not None:
            model["scriptFile"] = script_file
        if api_key_env is not None:
            model["apiKeyEnv"] = api_key_env
        document["model"] = model
    if instance is not None:
        document["instance"] = instance
    return parse_runtime_config(document, source=where)
