"""Stack configuration: the committed stacks load, and bad configuration fails with a message
that names the key, before the program declares anything."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pulumi
import pytest
from chorus_infra.config import (
    DEFAULT_KAFKA_VERSION,
    KAFKA_VERSIONS,
    STRIMZI,
    ConfigError,
    StackConfig,
    from_pulumi_config,
    load_config,
    load_stack_file,
)
from chorus_infra.quantity import parse_quantity

from tests.infra.stacks import REPO_URL, stack_file, stack_keys

pytestmark = pytest.mark.unit

DEV, PROD = stack_file("dev"), stack_file("prod")


def dev() -> dict[str, Any]:
    return stack_keys("dev")


def prod() -> dict[str, Any]:
    raw = stack_keys("prod")
    raw["gitops"]["repoURL"] = REPO_URL
    return raw


def problems_of(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    return caught.value.problems


# --- the committed stacks ----------------------------------------------------------------


def test_dev_stack_is_one_small_node_without_gitops() -> None:
    config = load_stack_file(DEV)
    assert config.environment == "dev"
    assert (config.kafka.brokers, config.kafka.controllers) == (1, 1)
    assert [pool.storage.type for pool in config.kafka.node_pools] == ["ephemeral"]
    assert config.kafka.replication.factor == 1
    assert not config.gitops.enabled
    assert not config.flink.webhook
    assert config.operator.reference_agents


def test_prod_stack_is_three_and_three_with_tls_and_scram() -> None:
    config = load_stack_file(PROD, {"gitops": {"repoURL": REPO_URL}})
    kafka = config.kafka
    assert (kafka.brokers, kafka.controllers) == (3, 3)
    assert (kafka.replication.factor, kafka.replication.min_insync_replicas) == (3, 2)
    assert all(item.tls and item.authentication == "scram-sha-512" for item in kafka.listeners)
    assert kafka.authorization is not None and kafka.authorization.type == "simple"
    assert kafka.rack is not None and kafka.pod_disruption_budget is not None
    assert {pool.storage.type for pool in kafka.node_pools} == {"persistent-claim"}
    assert config.gitops.enabled and config.flink.webhook


def test_committed_prod_stack_asks_for_the_repository_first() -> None:
    with pytest.raises(ConfigError) as caught:
        load_stack_file(PROD)
    assert [key for key, _ in caught.value.problems] == ["chorus:gitops.repoURL"]
    assert "required when GitOps is on" in str(caught.value)


def test_environment_sets_gitops_and_webhook_defaults() -> None:
    raw = dev()
    del raw["gitops"], raw["flink"], raw["operator"]
    assert not load_config(raw).gitops.enabled
    raw = prod()
    del raw["flink"]
    raw["gitops"] = {"repoURL": REPO_URL}
    config = load_config(raw)
    assert config.gitops.enabled and config.flink.webhook


def test_supported_kafka_versions_are_one_table() -> None:
    assert DEFAULT_KAFKA_VERSION in KAFKA_VERSIONS
    assert STRIMZI.version.startswith("1.2.")
    for version, metadata in KAFKA_VERSIONS.items():
        major, minor, _ = version.split(".")
        assert metadata.startswith(f"{major}.{minor}-IV"), version
    assert load_stack_file(DEV).kafka.effective_metadata_version == KAFKA_VERSIONS["4.3.1"]


# --- bad configuration -------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def edit(base: Callable[[], dict[str, Any]], change: Edit) -> dict[str, Any]:
    raw = copy.deepcopy(base())
    change(raw)
    return raw


def _set(path: str, value: Any) -> Edit:
    """Sets a dotted path (``kafka.nodePools.0.storage.size``) to ``value``."""

    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _add_listener(listener: dict[str, Any]) -> Edit:
    return lambda raw: raw["kafka"]["listeners"].append(listener)


BAD: dict[str, tuple[Callable[[], dict[str, Any]], Edit, str, str]] = {
    "replication above brokers": (
        dev,
        _set("kafka.replication.factor", 3),
        "chorus:kafka.replication.factor",
        "3 is above the number of brokers (1)",
    ),
    "unsupported kafka version": (
        dev,
        _set("kafka.version", "3.9.0"),
        "chorus:kafka.version",
        "Kafka 3.9.0 is not supported by Strimzi 1.2.0 (supported: 4.2.0, 4.2.1, 4.3.0, 4.3.1)",
    ),
    "storage size not a quantity": (
        dev,
        _set("kafka.nodePools.0.storage.size", "10 GB"),
        "chorus:kafka.nodePools[0].storage.size",
        "'10 GB' is not a Kubernetes quantity (for example 500m, 2Gi or 10Gi)",
    ),
    "storage size zero": (
        dev,
        _set("kafka.nodePools.0.storage.size", "0Gi"),
        "chorus:kafka.nodePools[0].storage.size",
        "'0Gi' must be above zero",
    ),
    "min insync above replication": (
        dev,
        _set("kafka.replication.minInsyncReplicas", 2),
        "chorus:kafka.replication.minInsyncReplicas",
        "2 is above the replication factor (1)",
    ),
    "metadata version of another minor": (
        dev,
        _set("kafka.metadataVersion", "4.2-IV1"),
        "chorus:kafka.metadataVersion",
        "'4.2-IV1' does not match Kafka 4.3.1 (expected 4.3-IV<n>)",
    ),
    "public listener without tls": (
        dev,
        _add_listener({"name": "external", "port": 9094, "type": "loadbalancer", "tls": False}),
        "chorus:kafka.listeners[1].tls",
        "listener 'external' is reachable from outside the cluster (loadbalancer) and must use TLS",
    ),
    "listener port taken twice": (
        dev,
        _add_listener({"name": "other", "port": 9092, "tls": True}),
        "chorus:kafka.listeners",
        "port '9092' appears more than once",
    ),
    "listener name Strimzi refuses": (
        dev,
        _set("kafka.listeners.0.name", "plain_text"),
        "chorus:kafka.listeners[0].name",
        "String should match pattern '^[a-z0-9]{1,11}$'",
    ),
    "listener port Strimzi keeps": (
        dev,
        _set("kafka.listeners.0.port", 9404),
        "chorus:kafka.listeners[0].port",
        "9404 is reserved by Strimzi",
    ),
    "unknown client listener": (
        dev,
        _set("kafka.clientListener", "tls"),
        "chorus:kafka.clientListener",
        "'tls' is not a listener (listeners: plain)",
    ),
    "authorization with an anonymous client listener": (
        dev,
        _set("kafka.authorization", {"type": "simple"}),
        "chorus:kafka.clientListener",
        "listener 'plain' has no authentication, so with authorization on its clients may do "
        "nothing",
    ),
    "no controller": (
        dev,
        _set("kafka.nodePools.0.roles", ["broker"]),
        "chorus:kafka.nodePools",
        "no pool has the controller role (KRaft needs one)",
    ),
    "limit below request": (
        dev,
        _set("kafka.nodePools.0.resources.limits.memory", "512Mi"),
        "chorus:kafka.nodePools[0].resources.limits.memory",
        "512Mi is below the request (1Gi)",
    ),
    "missing limits": (
        dev,
        lambda raw: raw["kafka"]["nodePools"][0]["resources"].pop("limits"),
        "chorus:kafka.nodePools[0].resources.limits",
        "required",
    ),
    "typo in a key": (
        dev,
        lambda raw: raw["kafka"].update(clustername="x"),
        "chorus:kafka.clustername",
        "unknown key",
    ),
    "typo in a top-level key": (
        dev,
        lambda raw: raw.update(kafak={}),
        "chorus:kafak",
        "unknown key (known: environment, domains, kafka, flink, operator, gitops)",
    ),
    "unknown environment": (
        dev,
        _set("environment", "staging"),
        "chorus:environment",
        "Input should be 'dev' or 'prod'",
    ),
    "no domain": (
        dev,
        _set("domains", []),
        "chorus:domains",
        "List should have at least 1 item after validation, not 0",
    ),
    "domain named like a platform namespace": (
        dev,
        _set("domains", ["kafka"]),
        "chorus:domains[0]",
        "namespace 'kafka' is also chorus:kafka.namespace",
    ),
    "gitops without a repository": (
        dev,
        _set("gitops", {"enabled": True}),
        "chorus:gitops.repoURL",
        "required when GitOps is on (prod turns it on by default): the Git repository Argo CD "
        "syncs agents/<domain>/deploy from",
    ),
    "gitops and reference agents both": (
        dev,
        _set("gitops", {"enabled": True, "repoURL": REPO_URL}),
        "chorus:operator.referenceAgents",
        "Argo CD already applies agents/<domain>/deploy when GitOps is on; turn one of them off",
    ),
    "prod plain listener": (
        prod,
        _set("kafka.listeners.0", {"name": "plain", "port": 9092, "tls": False}),
        "chorus:kafka.listeners[0].tls",
        "prod requires TLS on every listener ('plain')",
    ),
    "prod two controllers": (
        prod,
        _set("kafka.nodePools.0.replicas", 2),
        "chorus:kafka.nodePools",
        "prod requires an odd number of controllers, at least 3 (has 2)",
    ),
    "prod ephemeral storage": (
        prod,
        _set("kafka.nodePools.1.storage.type", "ephemeral"),
        "chorus:kafka.nodePools[1].storage.type",
        "prod requires persistent-claim storage (pool 'brokers')",
    ),
    "prod without rack awareness": (
        prod,
        lambda raw: raw["kafka"].pop("rack"),
        "chorus:kafka.rack",
        "prod requires rack awareness (rack.topologyKey)",
    ),
    "prod replication 2": (
        prod,
        _set("kafka.replication.factor", 2),
        "chorus:kafka.replication.factor",
        "prod requires replication factor 3 or more",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_configuration_names_the_key(case: str) -> None:
    base, change, key, message = BAD[case]
    found = problems_of(edit(base, change))
    assert (key, message) in found, found


def test_every_problem_is_reported_at_once() -> None:
    raw = edit(dev, _set("kafka.replication.factor", 3))
    raw["kafka"]["version"] = "3.9.0"
    raw["kafka"]["nodePools"][0]["storage"]["size"] = "lots"
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    # Field errors come first (cross-field checks need valid fields), then all of them at once.
    assert [key for key, _ in caught.value.problems] == ["chorus:kafka.nodePools[0].storage.size"]
    raw["kafka"]["nodePools"][0]["storage"]["size"] = "2Gi"
    keys = [key for key, _ in problems_of(raw)]
    assert keys == ["chorus:kafka.version", "chorus:kafka.replication.factor"]
    text = str(ConfigError(problems_of(raw)))
    assert text.startswith("invalid stack configuration:\n  chorus:kafka.version: Kafka 3.9.0")


def test_prod_policy_does_not_apply_to_dev() -> None:
    assert load_config(dev()).environment == "dev"
    raw = edit(dev, _set("environment", "prod"))
    keys = {key for key, _ in problems_of(raw)}
    assert {
        "chorus:kafka.listeners[0].tls",
        "chorus:kafka.authorization",
        "chorus:kafka.rack",
        "chorus:kafka.podDisruptionBudget",
        "chorus:kafka.nodePools[0].storage.type",
        "chorus:kafka.replication.factor",
    } <= keys


# --- reading the running stack's config --------------------------------------------------


@pytest.fixture
def pulumi_config() -> Iterator[Callable[[dict[str, Any]], None]]:
    def install(raw: dict[str, Any]) -> None:
        pulumi.runtime.set_all_config(
            {
                f"chorus:{key}": value if isinstance(value, str) else json.dumps(value)
                for key, value in raw.items()
            }
        )

    yield install
    pulumi.runtime.set_all_config({})


def test_from_pulumi_config_reads_structured_and_plain_values(
    pulumi_config: Callable[[dict[str, Any]], None],
) -> None:
    pulumi_config(dev())
    config = from_pulumi_config()
    assert isinstance(config, StackConfig)
    assert config == load_stack_file(DEV)


def test_from_pulumi_config_refuses_unknown_chorus_keys(
    pulumi_config: Callable[[dict[str, Any]], None],
) -> None:
    pulumi_config({**dev(), "kafak": {"x": 1}})
    with pytest.raises(ConfigError, match="chorus:kafak: unknown key"):
        from_pulumi_config()


# --- quantities --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(1024**3)),
        ("1.5Mi", Decimal("1.5") * 1024**2),
        ("2e3", Decimal(2000)),
        ("10G", Decimal(10**10)),
        (".5", Decimal("0.5")),
    ],
)
def test_quantities_parse_like_the_apiserver(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "10 GB", "1GB", "1.2.3", "ten", "1Gii"])
def test_non_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)
