"""The operator model's golden cases: ``tests/golden/operator/inputs/<case>.yaml`` holds the
Agent or Tool, every Tool it refers to (with discovered tools), the operator's settings and
what the reconcile layer would have found; ``outputs/<case>.yaml`` what the model builds."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chorus_api.agent import Agent
from chorus_api.runtime import runtime_config_document
from chorus_api.tool import Tool
from chorus_operator.model import (
    AgentInputs,
    OperatorSettings,
    ToolInputs,
    build_agent,
    build_tool,
    resolve_tool,
)

GOLDEN = Path(__file__).parents[2] / "golden" / "operator"
INPUTS = GOLDEN / "inputs"
OUTPUTS = GOLDEN / "outputs"
REGENERATE = "UPDATE_GOLDEN=1 .venv/bin/pytest tests/operator/model"
VOLATILE = ("uid",)
"""Fields of owner references that name one cluster's object, not the desired state."""


def cases() -> list[str]:
    """Every golden case by name."""
    return sorted(path.stem for path in INPUTS.glob("*.yaml"))


@dataclass(frozen=True)
class Built:
    """What the model made of one case: its children and the summary for status."""

    children: tuple[dict[str, Any], ...]
    summary: dict[str, Any]


def load_case(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((INPUTS / f"{name}.yaml").read_text())
    return document


def agent_inputs(document: dict[str, Any]) -> AgentInputs:
    settings = OperatorSettings(**document["settings"])
    tools = {
        t.metadata.name: resolve_tool(t)
        for t in map(Tool.model_validate, document.get("tools", []))
    }
    agent = Agent.model_validate(document["agent"])
    return AgentInputs(
        agent=agent,
        uid=document["uid"],
        tools={b.ref: tools.get(b.ref) for b in agent.spec.tools},
        settings=settings,
        keda_available=document.get("keda", False),
        secrets_present=document.get("secrets", {}),
    )


def build_case(name: str) -> Built:
    """Run the model on case ``name``."""
    document = load_case(name)
    if "agent" in document:
        plan = build_agent(agent_inputs(document))
        summary = {
            "configHash": plan.config_hash,
            "topics": dict(plan.topics),
            "remoteChildren": [
                f"{c['kind']} {c['metadata']['namespace']}/{c['metadata']['name']}"
                for c in plan.remote_children
            ],
            "runtimeConfig": runtime_config_document(plan.runtime_config),
            "agentCard": dict(plan.agent_card),
        }
        return Built(plan.children, summary)
    tool_plan = build_tool(
        ToolInputs(
            tool=Tool.model_validate(document["tool"]),
            uid=document["uid"],
            settings=OperatorSettings(**document["settings"]),
        )
    )
    return Built(tool_plan.children, {"endpoint": tool_plan.endpoint})


def normalize(children: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The children without volatile fields."""
    found = []
    for child in copy.deepcopy(list(children)):
        for owner in child["metadata"].get("ownerReferences", []):
            for field in VOLATILE:
                owner.pop(field, None)
        found.append(child)
    return found


def render(built: Built) -> str:
    """The golden file's text: the summary, then each child, as YAML documents."""
    documents = [{"summary": built.summary}, *normalize(built.children)]
    return yaml.safe_dump_all(documents, sort_keys=True, width=100)
