"""Model providers behind one interface (:class:`~chorus_agents.models.base.ModelProvider`)."""

from chorus_api.runtime import RuntimeModel

from chorus_agents.models.base import (
    ChatMessage,
    ModelError,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
)
from chorus_agents.models.scripted import ScriptedModel, ScriptError, ScriptRule

__all__ = [
    "ChatMessage",
    "ModelError",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "ScriptError",
    "ScriptRule",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "provider_for",
]


def provider_for(model: RuntimeModel) -> ModelProvider:
    """The provider the runtime config names."""
    if model.provider == "scripted":
        if model.script_file is None:
            return ScriptedModel(model=model.name or "scripted")
        scripted = ScriptedModel.from_file(model.script_file)
        scripted.model = model.name or "scripted"
        return scripted
    raise NotImplementedError(
        f"model provider {model.provider}: not implemented yet (only scripted is)"
    )
