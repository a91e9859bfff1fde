"""``chorus dev up --model-latency``: a domain's scripted models at a real model's pace.

The reference domains' models are ``scripted`` (offline, instant). To see a domain as it
runs with a real model (a decision in seconds), every scripted model's script gains a
lognormal latency (:mod:`chorus_agents.models.latency`): same rules, same decisions, each
turn delayed as a model's would be. Pure: the manifests are rewritten in memory.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml
from chorus_api.agent import Provider

from chorus_agents.dev.manifests import Domain
from chorus_agents.models.latency import Latency, LatencyError

SIGMA = 0.8
"""The spread of a model's latency when only the median is given (lognormal sigma)."""


def parse_model_latency(text: str) -> dict[str, Any]:
    """``MEDIAN`` or ``MEDIAN,SIGMA`` (seconds) as a script's ``latency`` mapping (seed 1);
    a :class:`LatencyError` names what is wrong."""
    wrong = f"--model-latency: MEDIAN or MEDIAN,SIGMA in seconds, not {text!r}"
    try:
        numbers = [float(p.strip()) for p in text.split(",")]
    except ValueError:
        raise LatencyError(wrong) from None
    if len(numbers) not in (1, 2):
        raise LatencyError(wrong)
    latency = {"median": numbers[0], "sigma": numbers[1] if len(numbers) == 2 else SIGMA, "seed": 1}
    Latency.parse(latency, "--model-latency")
    return latency


def with_model_latency(domain: Domain, latency: dict[str, Any]) -> Domain:
    """``domain`` with every scripted model's script taking ``latency`` per turn."""
    agents = []
    for agent in domain.agents:
        model = agent.spec.model
        if model is None or model.provider != Provider.SCRIPTED:
            agents.append(agent)
            continue
        document = yaml.safe_load(model.script) if model.script else []
        script = dict(document) if isinstance(document, dict) else {"rules": document}
        script["latency"] = latency
        timed = model.model_copy(update={"script": yaml.safe_dump(script, sort_keys=False)})
        spec = agent.spec.model_copy(update={"model": timed})
        agents.append(agent.model_copy(update={"spec": spec}))
    return replace(domain, agents=tuple(agents))
