"""Semantic checks of an Agent against what it refers to, before anything is built.

All problems are collected; a spec error wins over a missing dependency (editing the spec
is needed either way), and the first problem's reason is the condition's reason.
"""

from __future__ import annotations

from chorus_api.agent import Agent

from chorus_operator.model.errors import DependencyNotReady, ModelError, SpecInvalid
from chorus_operator.model.inputs import AgentInputs, ResolvedTool

TOOLS_RESOLVED = "ToolsResolved"
WORKLOAD_READY = "WorkloadReady"


def agent_key(agent: Agent) -> str:
    """``agent <namespace>/<name>``, how every message names the Agent."""
    return f"agent {agent.metadata.namespace}/{agent.metadata.name}"


def check_agent(inputs: AgentInputs) -> dict[str, ResolvedTool]:
    """The resolved tools by ref; raises :class:`SpecInvalid` or :class:`DependencyNotReady`."""
    agent = inputs.agent
    who = agent_key(agent)
    invalid: list[SpecInvalid] = []
    waiting: list[DependencyNotReady] = []
    resolved: dict[str, ResolvedTool] = {}
    for binding in agent.spec.tools:
        tool = inputs.tools.get(binding.ref)
        if tool is None:
            waiting.append(
                DependencyNotReady(
                    TOOLS_RESOLVED, "ToolNotFound", f"{who}: tool {binding.ref!r} does not exist"
                )
            )
            continue
        if tool.offered is None:
            waiting.append(
                DependencyNotReady(
                    TOOLS_RESOLVED,
                    "ToolNotDiscovered",
                    f"{who}: tool {binding.ref!r} has not listed its tools yet",
                )
            )
        else:
            missing = [name for name in binding.allow if name not in tool.offered]
            if missing:
                names = ", ".join(repr(name) for name in missing)
                invalid.append(
                    SpecInvalid(
                        TOOLS_RESOLVED,
                        "ToolDoesNotOffer",
                        f"{who}: tool {binding.ref!r} does not offer {names}",
                    )
                )
        if tool.bearer_token_secret is not None:
            _secret(inputs, tool.bearer_token_secret.name, f"tool {binding.ref!r}", waiting)
        resolved[binding.ref] = tool
    model = agent.spec.model
    if model is not None and model.api_key_secret_ref is not None:
        _secret(inputs, model.api_key_secret_ref.name, "spec.model.apiKeySecretRef", waiting)
    problems: list[ModelError] = [*invalid, *waiting]
    if problems:
        first = problems[0]
        message = "; ".join(p.message for p in problems)
        raise type(first)(first.condition_type, first.reason, message)
    return resolved


def _secret(inputs: AgentInputs, name: str, what: str, waiting: list[DependencyNotReady]) -> None:
    if not inputs.secrets_present.get(name, True):
        waiting.append(
            DependencyNotReady(
                WORKLOAD_READY,
                "SecretMissing",
                f"{agent_key(inputs.agent)}: {what}: secret {name!r} does not exist",
            )
        )
