"""``chorus dev up --model-latency``: every scripted model of a domain at a model's pace."""

from __future__ import annotations

import pytest
import yaml
from chorus_agents.dev.manifests import load_domain
from chorus_agents.dev.model_speed import parse_model_latency, with_model_latency
from chorus_agents.models.latency import LatencyError

from tests.services.base import REPO

pytestmark = pytest.mark.unit


def test_the_option_is_a_median_and_an_optional_sigma_and_names_itself_when_wrong() -> None:
    assert parse_model_latency("2") == {"median": 2.0, "sigma": 0.8, "seed": 1}
    assert parse_model_latency("1.5, 0.5") == {"median": 1.5, "sigma": 0.5, "seed": 1}
    for bad in ("fast", "1,2,3", "-1"):
        with pytest.raises(LatencyError, match="--model-latency"):
            parse_model_latency(bad)


def test_every_scripted_model_keeps_its_rules_and_gains_the_latency() -> None:
    domain = load_domain(REPO / "agents" / "trading" / "deploy")
    timed = with_model_latency(domain, parse_model_latency("2"))
    changed = 0
    for before, after in zip(domain.agents, timed.agents, strict=True):
        if before.spec.model is None:
            assert after == before  # code-defined agents without a model are left alone
            continue
        assert after.spec.model is not None and after.spec.model.script is not None
        script = yaml.safe_load(after.spec.model.script)
        assert script["latency"] == {"median": 2.0, "sigma": 0.8, "seed": 1}
        assert script["rules"] == yaml.safe_load(before.spec.model.script or "[]")
        changed += 1
    assert changed == 1  # trading's compliance
