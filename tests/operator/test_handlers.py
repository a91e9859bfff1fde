"""The handler layer's pure parts: owners from labels, backoff, what is watched, RBAC."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
from chorus_operator import kinds
from chorus_operator.cache import kept_copy
from chorus_operator.handlers import (
    WATCHED_CHILDREN,
    backoff,
    owner_of,
    raise_for,
    watched_children,
)
from chorus_operator.model.errors import DependencyNotReady, SpecInvalid
from chorus_operator.reconcile.common import Outcome


@pytest.mark.unit
def test_owner_of_a_child_from_its_labels() -> None:
    assert owner_of({"chorus.dev/agent": "a"}, "ns") == ("Agent", "ns", "a")
    remote = {
        "chorus.dev/agent": "ns.a",
        "chorus.dev/owner-namespace": "ns",
        "chorus.dev/owner-name": "a",
    }
    assert owner_of(remote, "kafka") == ("Agent", "ns", "a")
    assert owner_of({"chorus.dev/tool": "t"}, "ns") == ("Tool", "ns", "t")
    assert owner_of({"chorus.dev/agent": "x.y"}, "ns") is None
    assert owner_of({}, "ns") is None


@pytest.mark.unit
def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(retry) for retry in range(10)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 300 and delays == sorted(delays)


@pytest.mark.unit
def test_model_errors_become_kopf_errors() -> None:
    with pytest.raises(kopf.PermanentError, match="bad"):
        raise_for(Outcome(error=SpecInvalid("Ready", "R", "bad")), 0)
    with pytest.raises(kopf.TemporaryError) as caught:
        raise_for(Outcome(error=DependencyNotReady("ToolsResolved", "ToolNotFound", "wait")), 1)
    assert caught.value.delay == 10
    raise_for(Outcome(error=None), 0)


@pytest.mark.unit
def test_kafka_children_are_watched_only_where_the_operator_watches() -> None:
    assert watched_children((), "kafka") == WATCHED_CHILDREN
    assert watched_children(("a", "kafka"), "kafka") == WATCHED_CHILDREN
    narrow = watched_children(("a",), "kafka")
    assert kinds.KAFKA_TOPIC not in narrow and kinds.DEPLOYMENT in narrow


@pytest.mark.unit
def test_every_kind_handled_or_applied_is_in_the_rbac_rules() -> None:
    granted = {
        (g, r) for rule in kinds.rbac_rules() for g in rule["apiGroups"] for r in rule["resources"]
    }
    for kind in (*kinds.CHILD_KINDS, kinds.AGENT, kinds.TOOL, kinds.KAFKA, kinds.SECRET):
        assert (kind.group, kind.plural) in granted, kind
    assert ("chorus.dev", "agents/status") in granted
    assert all("*" not in rule["verbs"] for rule in kinds.rbac_rules())


@pytest.mark.unit
def test_child_kinds_per_namespace() -> None:
    own = kinds.child_kinds_in("a", owner_namespace="a", kafka_namespace="kafka")
    remote = kinds.child_kinds_in("kafka", owner_namespace="a", kafka_namespace="kafka")
    assert kinds.ROLE not in own and kinds.DEPLOYMENT in own
    assert remote == kinds.KAFKA_SIDE_KINDS
    assert kinds.child_kinds_in("k", owner_namespace="k", kafka_namespace="k") == kinds.CHILD_KINDS


@pytest.mark.unit
def test_a_kept_body_is_an_independent_copy_without_managed_fields() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "t", "managedFields": [{"manager": "x"}], "labels": {"a": "1"}},
        "status": {"conditions": [{"type": "Ready"}]},
    }
    copy_ = kept_copy(kopf.Body(cast(kopf.RawBody, body)))
    assert copy_ == {
        "metadata": {"name": "t", "labels": {"a": "1"}},
        "status": {"conditions": [{"type": "Ready"}]},
    }
    copy_["status"]["conditions"][0]["type"] = "changed"
    copy_["metadata"]["labels"]["a"] = "2"
    assert body["status"]["conditions"][0]["type"] == "Ready"
    assert body["metadata"]["labels"] == {"a": "1"}
