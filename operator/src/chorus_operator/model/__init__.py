"""The operator's pure model layer: typed inputs in, manifests out (no kopf, no API calls).

The reconcile layer resolves what an Agent or Tool refers to into
:class:`~chorus_operator.model.inputs.AgentInputs` / ``ToolInputs``, calls
:func:`build_agent` / :func:`build_tool`, and applies the plan's children in order.
"""

from chorus_operator.model.access import Acl, agent_acls, stream_acls
from chorus_operator.model.agent import build_agent
from chorus_operator.model.card import agent_card
from chorus_operator.model.cleanup import CleanupStep, cleanup_steps, needs_finalizer
from chorus_operator.model.errors import DependencyNotReady, ModelError, SpecInvalid
from chorus_operator.model.inputs import (
    AgentInputs,
    OperatorSettings,
    ResolvedTool,
    ToolInputs,
)
from chorus_operator.model.plan import AgentPlan, ToolPlan
from chorus_operator.model.tool import build_tool, resolve_tool, tool_endpoint

__all__ = [
    "Acl",
    "AgentInputs",
    "AgentPlan",
    "CleanupStep",
    "DependencyNotReady",
    "ModelError",
    "OperatorSettings",
    "ResolvedTool",
    "SpecInvalid",
    "ToolInputs",
    "ToolPlan",
    "agent_acls",
    "agent_card",
    "build_agent",
    "build_tool",
    "cleanup_steps",
    "needs_finalizer",
    "resolve_tool",
    "stream_acls",
    "tool_endpoint",
]
