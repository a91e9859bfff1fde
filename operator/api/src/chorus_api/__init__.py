"""The chorus.dev/v1alpha1 API: Agent and Tool models, and the CRDs generated from them.

``Agent.model_validate(obj)`` and ``Tool.model_validate(obj)`` parse whole resources as
the apiserver returns them and enforce the CRDs' rules; :func:`parse_resource` picks the
kind, :func:`describe_errors` renders a refusal field by field. ``python -m
chorus_api.crdgen`` regenerates the CRDs and ``docs/api.md`` from the models.
"""

from chorus_api.agent import Agent, AgentSpec, AgentStatus
from chorus_api.common import API_VERSION, GROUP, VERSION, Condition, Phase, duration_ms
from chorus_api.load import Resource, load_resources, parse_resource, to_manifest
from chorus_api.rules import describe_errors
from chorus_api.tool import Tool, ToolSpec, ToolStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Agent",
    "AgentSpec",
    "AgentStatus",
    "Condition",
    "Phase",
    "Resource",
    "Tool",
    "ToolSpec",
    "ToolStatus",
    "describe_errors",
    "duration_ms",
    "load_resources",
    "parse_resource",
    "to_manifest",
]
