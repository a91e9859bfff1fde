from __future__ import annotations

import dataclasses

import pytest
from chorus_operator.model import build_agent, cleanup_steps, needs_finalizer
from chorus_operator.model.cleanup import DETACH_PATCH, remote_selector

from tests.operator.model.golden import agent_inputs, load_case


@pytest.mark.unit
def test_remote_children_are_deleted_and_topics_detached_under_retain() -> None:
    inputs = agent_inputs(load_case("agent-scram-remote"))
    plan = build_agent(inputs)
    steps = cleanup_steps(plan.children, inputs.settings, agent_namespace="trading")
    assert {(s.kind, s.namespace, s.name) for s in steps} == {
        (c["kind"], c["metadata"]["namespace"], c["metadata"]["name"]) for c in plan.remote_children
    }
    assert all((s.patch == DETACH_PATCH) == (s.kind == "KafkaTopic") for s in steps)
    assert all(s.name not in {"chorus.agent-cards", "chorus.trading.audit"} for s in steps)


@pytest.mark.unit
def test_same_namespace_with_delete_policy_needs_no_finalizer() -> None:
    inputs = agent_inputs(load_case("agent-tls-same-namespace-keda"))
    plan = build_agent(inputs)
    assert not needs_finalizer(plan.children, inputs.settings, agent_namespace="trading")


@pytest.mark.unit
def test_same_namespace_with_retain_detaches_topics_only() -> None:
    inputs = agent_inputs(load_case("agent-tls-same-namespace-keda"))
    settings = dataclasses.replace(inputs.settings, topic_deletion_policy="retain")
    plan = build_agent(dataclasses.replace(inputs, settings=settings))
    steps = cleanup_steps(plan.children, settings, agent_namespace="trading")
    assert steps and {s.kind for s in steps} == {"KafkaTopic"}


@pytest.mark.unit
def test_remote_children_carry_the_selector_labels() -> None:
    plan = build_agent(agent_inputs(load_case("agent-scram-remote")))
    selector = remote_selector("trading", "risk-assessor")
    assert plan.remote_children
    for c in plan.remote_children:
        assert selector.items() <= c["metadata"]["labels"].items()
