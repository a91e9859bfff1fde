"""Model providers behind one interface (:class:`~chorus_agents.models.base.ModelProvider`).

:func:`provider_for` builds the provider a :class:`~chorus_api.runtime.RuntimeModel`
names. API keys come from ``apiKeyFile`` (a mounted Secret key, read first) or
``apiKeyEnv``; they are passed to the provider and never logged.

Token usage is counted in ``chorus_model_tokens_total{provider,model,kind}`` (``kind``:
``input`` or ``output``) and, for a model with a ``price``, the estimated cost in
``chorus_model_cost_usd_total{provider,model}``, in prometheus-client's default registry,
by :func:`record_usage`, which the agent loop calls once per model call. Prices are the
Agent's (``model.price``), never in code.

The providers on SDKs (``OpenAIModel``, ``AnthropicModel``, ``GeminiModel``) are imported
when first used: each SDK takes about a second to import, and every agent process imports
this package, most of them for one provider or none.
"""

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from chorus_api.runtime import RuntimeModel
from prometheus_client import Counter

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

if TYPE_CHECKING:
    from chorus_agents.models.anthropic import AnthropicModel
    from chorus_agents.models.gemini import GeminiModel
    from chorus_agents.models.openai import OpenAIModel

_LAZY = {
    "AnthropicModel": "chorus_agents.models.anthropic",
    "GeminiModel": "chorus_agents.models.gemini",
    "OpenAIModel": "chorus_agents.models.openai",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODEL_COST",
    "MODEL_TOKENS",
    "AnthropicModel",
    "ChatMessage",
    "GeminiModel",
    "ModelConfigError",
    "ModelError",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "OpenAIModel",
    "ScriptError",
    "ScriptRule",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "api_key",
    "provider_for",
    "provider_from_config",
    "record_usage",
]

MODEL_TOKENS = Counter(
    "chorus_model_tokens", "Tokens of model calls", ["provider", "model", "kind"]
)
MODEL_COST = Counter(
    "chorus_model_cost_usd",
    "Estimated cost of model calls in US dollars (tokens times the Agent's model.price)",
    ["provider", "model"],
)


class ModelConfigError(ValueError):
    """The model cannot be set up from the config (a missing key); the message says which."""


def record_usage(provider: str, model: str, usage: Usage, cost_usd: float | None = None) -> None:
    """Adds one call's tokens to ``chorus_model_tokens_total`` and, when the model is priced,
    its estimated cost to ``chorus_model_cost_usd_total``."""
    MODEL_TOKENS.labels(provider, model, "input").inc(usage.input_tokens)
    MODEL_TOKENS.labels(provider, model, "output").inc(usage.output_tokens)
    if cost_usd is not None:
        MODEL_COST.labels(provider, model).inc(cost_usd)


def api_key(model: RuntimeModel) -> str | None:
    """The API key from ``apiKeyFile`` (stripped), else ``apiKeyEnv``, else ``None``."""
    where = f"model {model.provider}/{model.name}"
    if model.api_key_file is not None:
        try:
            key = Path(model.api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ModelConfigError(
                f"{where}: cannot read apiKeyFile {model.api_key_file}: {exc.strerror or exc}"
            ) from None
        if not key:
            raise ModelConfigError(f"{where}: apiKeyFile {model.api_key_file} is empty")
        return key
    if model.api_key_env is not None:
        key = os.environ.get(model.api_key_env, "").strip()
        if not key:
            raise ModelConfigError(
                f"{where}: the environment variable {model.api_key_env} (apiKeyEnv) is not set"
            )
        return key
    return None


def provider_for(model: RuntimeModel) -> ModelProvider:
    """The provider the runtime config names, with the config's price (see
    :func:`_provider`)."""
    provider = _provider(model)
    provider.price = model.price
    return provider


def _provider(model: RuntimeModel) -> ModelProvider:
    """The provider the runtime config names.

    ``openai`` needs a key unless an ``endpoint`` is set (a local OpenAI-compatible server
    may need none); ``anthropic`` and ``gemini`` always need one.
    """
    where = f"model {model.provider}/{model.name}"
    if model.provider == "scripted":
        if model.script is not None:
            try:
                document = yaml.safe_load(model.script)
            except yaml.YAMLError as exc:
                raise ModelConfigError(f"{where}: script: not YAML: {exc}") from None
            try:
                scripted = ScriptedModel.from_document(document, source=f"{where}: script")
            except ScriptError as exc:
                raise ModelConfigError(str(exc)) from None
        elif model.script_file is not None:
            scripted = ScriptedModel.from_file(model.script_file)
        else:
            return ScriptedModel(model=model.name or "scripted")
        scripted.model = model.name or "scripted"
        return scripted
    assert model.name is not None  # RuntimeModel requires it unless scripted
    endpoint = str(model.endpoint) if model.endpoint is not None else None
    key = api_key(model)
    if model.provider == "openai":
        if key is None and endpoint is None:
            raise ModelConfigError(
                f"{where}: needs an API key (apiKeyFile or apiKeyEnv) for the public endpoint"
            )
        from chorus_agents.models.openai import OpenAIModel

        return OpenAIModel(
            model.name, api_key=key, endpoint=endpoint, api_version=model.api_version
        )
    if model.provider in ("anthropic", "gemini"):
        if key is None:
            raise ModelConfigError(f"{where}: needs an API key (apiKeyFile or apiKeyEnv)")
        if model.provider == "anthropic":
            from chorus_agents.models.anthropic import AnthropicModel

            return AnthropicModel(model.name, api_key=key, endpoint=endpoint)
        from chorus_agents.models.gemini import GeminiModel

        return GeminiModel(model.name, api_key=key, endpoint=endpoint)
    raise ModelConfigError(f"{where}: unknown provider (openai, anthropic, gemini or scripted)")


provider_from_config = provider_for
"""The same as :func:`provider_for`."""
