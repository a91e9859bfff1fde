"""The model a reference domain's Agent manifest names, built as the runtime builds it:
tests of a domain's logic consult the same script the deployed agent would."""

from __future__ import annotations

from chorus_agents.dev.config import runtime_config_for
from chorus_agents.dev.manifests import load_domain
from chorus_agents.models import ModelProvider, ScriptedModel, provider_for

from tests.services.base import REPO


def spec_model(domain: str, agent: str) -> ModelProvider:
    """The model of Agent ``agent`` in ``agents/<domain>/deploy``."""
    loaded = load_domain(REPO / "agents" / domain / "deploy")
    (found,) = [a for a in loaded.agents if a.metadata.name == agent]
    tools = {t.metadata.name: "http://127.0.0.1:1/mcp" for t in loaded.tools}
    config = runtime_config_for(found, "127.0.0.1:9092", tools)
    assert config.model is not None, f"{domain}/{agent} has no model in its spec"
    return provider_for(config.model)


def spec_script(domain: str, agent: str) -> ScriptedModel:
    """The same, for an Agent whose model is ``scripted`` (its ``model.script``)."""
    model = spec_model(domain, agent)
    assert isinstance(model, ScriptedModel), f"{domain}/{agent}: not a scripted model"
    return model
