"""The Pulumi program under Pulumi's mocks, per stack: the exact resources, their key inputs,
the dependency graph (operators and CRDs before the resources that need them) and the outputs.
"""

from __future__ import annotations

import json
import re
import runpy
from typing import Any

import pulumi
import pytest
import yaml
from chorus_infra import manifests
from chorus_infra.config import (
    ARGO_CD,
    CERT_MANAGER,
    FLINK_OPERATOR,
    STRIMZI,
    StackConfig,
)

from tests.infra.pulumi_mocks import (
    COMPONENT_TYPES,
    KUSTOMIZE,
    RELEASE,
    MockedStack,
    Rendering,
    render,
)
from tests.infra.stacks import REPO, REPO_URL, stack_config, stack_keys

pytestmark = pytest.mark.unit


NAMESPACE = "kubernetes:core/v1:Namespace"
ACCOUNT = "kubernetes:core/v1:ServiceAccount"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
KAFKA = "kubernetes:kafka.strimzi.io/v1:Kafka"
POOL = "kubernetes:kafka.strimzi.io/v1:KafkaNodePool"
APPSET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"


@pytest.fixture(scope="module")
def dev() -> Rendering:
    return render(stack_config("dev"))


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render(stack_config("prod"))


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> tuple[StackConfig, Rendering]:
    name = str(request.param)
    return stack_config(name), request.getfixturevalue(name)


# --- what each stack creates -------------------------------------------------------------

COMMON = {
    ("chorus:kafka:KafkaPlatform", "kafka"),
    (NAMESPACE, "kafka-namespace"),
    (RELEASE, "kafka-strimzi"),
    (KAFKA, "kafka-cluster"),
    ("chorus:flink:FlinkPlatform", "flink"),
    (NAMESPACE, "flink-operator-namespace"),
    (RELEASE, "flink-operator"),
    (NAMESPACE, "flink-namespace-trading"),
    (ACCOUNT, "flink-job-account-trading"),
    (ROLE, "flink-job-role-trading"),
    (BINDING, "flink-job-role-binding-trading"),
    ("chorus:operator:Chorus", "chorus"),
    (NAMESPACE, "chorus-namespace"),
    (RELEASE, "chorus-operator"),
}
DEV = COMMON | {
    (POOL, "kafka-pool-dual"),
    (KUSTOMIZE, "chorus-agents-trading"),
}
PROD = COMMON | {
    (POOL, "kafka-pool-controllers"),
    (POOL, "kafka-pool-brokers"),
    (NAMESPACE, "flink-cert-manager-namespace"),
    (RELEASE, "flink-cert-manager"),
    ("chorus:gitops:GitOps", "gitops"),
    (NAMESPACE, "gitops-namespace"),
    (RELEASE, "gitops-argocd"),
    (APPSET, "gitops-domains"),
}


def test_dev_declares_exactly_these_resources(dev: Rendering) -> None:
    assert {(item.type, item.name) for item in dev.records} == DEV
    assert len(dev.records) == len(DEV)


def test_prod_declares_exactly_these_resources(prod: Rendering) -> None:
    assert {(item.type, item.name) for item in prod.records} == PROD
    assert len(prod.records) == len(PROD)


def test_children_belong_to_their_component_and_carry_its_name(
    stack: tuple[StackConfig, Rendering],
) -> None:
    _, rendering = stack
    components = {item.urn: item for item in rendering.records if item.type in COMPONENT_TYPES}
    assert len(components) >= 3
    for item in rendering.records:
        if item.type in COMPONENT_TYPES:
            assert item.parent.split("::")[-2].endswith("pulumi:pulumi:Stack"), item  # top level
            continue
        assert item.parent in components, f"{item.name} is not a component's child"
        assert item.name.startswith(components[item.parent].name + "-"), item.name


# --- charts ------------------------------------------------------------------------------


def release(rendering: Rendering, name: str) -> dict[str, Any]:
    item = rendering.named(name)
    assert item.type == RELEASE
    return item.inputs


@pytest.mark.parametrize(
    ("name", "pin", "release_name", "namespace"),
    [
        ("kafka-strimzi", STRIMZI, "strimzi", "kafka"),
        ("flink-operator", FLINK_OPERATOR, "flink-kubernetes-operator", "flink-operator"),
        ("flink-cert-manager", CERT_MANAGER, "cert-manager", "cert-manager"),
        ("gitops-argocd", ARGO_CD, "argocd", "argocd"),
    ],
)
def test_upstream_charts_are_pinned(
    prod: Rendering, name: str, pin: Any, release_name: str, namespace: str
) -> None:
    inputs = release(prod, name)
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
        pin.chart,
        pin.version,
        pin.repo,
    )
    assert (inputs["name"], inputs["namespace"]) == (release_name, namespace)
    assert inputs["createNamespace"] is False  # namespaces are the program's own objects


def test_pinned_versions_are_the_ones_the_design_names() -> None:
    assert re.fullmatch(r"1\.2\.\d+", STRIMZI.version)
    assert (STRIMZI.chart, STRIMZI.repo) == ("strimzi-kafka-operator", "https://strimzi.io/charts/")
    assert FLINK_OPERATOR.version == "1.15.0"
    assert FLINK_OPERATOR.repo == (
        "https://downloads.apache.org/flink/flink-kubernetes-operator-1.15.0/"
    )
    assert CERT_MANAGER.repo == "https://charts.jetstack.io"
    assert ARGO_CD.repo == "https://argoproj.github.io/argo-helm"


def test_chorus_operator_is_the_local_chart(stack: tuple[StackConfig, Rendering]) -> None:
    config, rendering = stack
    inputs = release(rendering, "chorus-operator")
    assert inputs["chart"] == "charts/chorus-operator"  # relative to where the program runs
    assert (REPO / inputs["chart"] / "crds").is_dir()
    assert "repositoryOpts" not in inputs and "version" not in inputs
    values = inputs["values"]
    assert values["kafka"]["clusterName"] == config.kafka.cluster_name
    assert values["kafka"]["namespace"] == config.kafka.namespace
    assert values["watchNamespaces"] == ["trading"]
    assert values["flink"]["serviceAccount"] == "flink"


def test_chorus_operator_connects_the_way_each_stack_secures_kafka(
    dev: Rendering, prod: Rendering
) -> None:
    assert release(dev, "chorus-operator")["values"]["kafka"] == {
        "clusterName": "chorus",
        "namespace": "kafka",
        "listener": "plain",
        "bootstrapServers": "chorus-kafka-bootstrap.kafka.svc:9092",
        "tls": False,
        "authentication": "none",
        "authorization": False,
    }
    assert release(prod, "chorus-operator")["values"]["kafka"] == {
        "clusterName": "chorus",
        "namespace": "kafka",
        "listener": "tls",
        "bootstrapServers": "chorus-kafka-bootstrap.kafka.svc:9093",
        "tls": True,
        "authentication": "scram-sha-512",
        "authorization": True,
    }


def test_flink_operator_watches_the_domains_and_the_webhook_follows_config(
    dev: Rendering, prod: Rendering
) -> None:
    for rendering, webhook in ((dev, False), (prod, True)):
        values = release(rendering, "flink-operator")["values"]
        assert values["watchNamespaces"] == ["trading"]
        assert values["webhook"] == {"create": webhook}
        # The job ServiceAccount and Role are the program's own objects, not the chart's.
        assert values["jobServiceAccount"]["create"] is False
        assert values["rbac"]["jobRole"] == {"create": False}
        assert values["rbac"]["jobRoleBinding"] == {"create": False}
    assert release(prod, "flink-cert-manager")["values"]["crds"] == {"enabled": True}


# --- Kafka -------------------------------------------------------------------------------


def kafka_spec(rendering: Rendering) -> dict[str, Any]:
    return dict(rendering.named("kafka-cluster").inputs["spec"])


def pools(rendering: Rendering) -> dict[str, dict[str, Any]]:
    return {item.inputs["metadata"]["name"]: item.inputs for item in rendering.of_type(POOL)}


def test_dev_kafka_is_one_dual_role_ephemeral_node(dev: Rendering) -> None:
    spec = kafka_spec(dev)["kafka"]
    assert (spec["version"], spec["metadataVersion"]) == ("4.3.1", "4.3-IV0")
    assert spec["listeners"] == [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]
    assert "authorization" not in spec and "rack" not in spec
    assert spec["config"]["default.replication.factor"] == 1
    assert spec["config"]["min.insync.replicas"] == 1
    assert spec["config"]["auto.create.topics.enable"] is False
    [(name, pool)] = pools(dev).items()
    assert name == "dual"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "chorus"
    assert pool["spec"]["replicas"] == 1
    assert pool["spec"]["roles"] == ["controller", "broker"]
    assert pool["spec"]["storage"] == {"type": "ephemeral", "sizeLimit": "2Gi"}


def test_prod_kafka_is_three_controllers_three_brokers_tls_scram(prod: Rendering) -> None:
    spec = kafka_spec(prod)
    kafka = spec["kafka"]
    assert kafka["listeners"] == [
        {
            "name": "tls",
            "port": 9093,
            "type": "internal",
            "tls": True,
            "authentication": {"type": "scram-sha-512"},
        }
    ]
    assert kafka["authorization"] == {"type": "simple", "superUsers": []}
    assert kafka["rack"] == {"type": "topology-label", "topologyKey": "topology.kubernetes.io/zone"}
    config = kafka["config"]
    assert config["default.replication.factor"] == 3
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["transaction.state.log.min.isr"] == 2
    assert config["replica.selector.class"].endswith("RackAwareReplicaSelector")
    assert kafka["template"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert spec["entityOperator"]["template"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert kafka["metricsConfig"]["type"] == "strimziMetricsReporter"
    assert set(spec["entityOperator"]) == {"topicOperator", "userOperator", "template"}
    found = pools(prod)
    assert set(found) == {"controllers", "brokers"}
    assert (found["controllers"]["spec"]["roles"], found["controllers"]["spec"]["replicas"]) == (
        ["controller"],
        3,
    )
    assert (found["brokers"]["spec"]["roles"], found["brokers"]["spec"]["replicas"]) == (
        ["broker"],
        3,
    )
    for pool in found.values():
        assert pool["spec"]["storage"]["type"] == "persistent-claim"
        assert pool["spec"]["storage"]["deleteClaim"] is False


def test_no_listener_without_tls_in_prod_and_no_public_one_anywhere(
    stack: tuple[StackConfig, Rendering],
) -> None:
    config, rendering = stack
    for listener in kafka_spec(rendering)["kafka"]["listeners"]:
        if listener["type"] not in {"internal", "cluster-ip"}:
            assert listener["tls"], listener
        if config.environment == "prod":
            assert listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"


def test_kafka_waits_until_strimzi_reports_it_ready(stack: tuple[StackConfig, Rendering]) -> None:
    _, rendering = stack
    cluster = rendering.named("kafka-cluster")
    assert cluster.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert cluster.create_timeout == "30m"


# --- every workload has requests and limits ----------------------------------------------

# Where each chart takes a container's resources (the pinned charts' values.yaml).
CHART_WORKLOADS = {
    "kafka-strimzi": ["resources"],
    "flink-cert-manager": [
        "resources",
        "webhook.resources",
        "cainjector.resources",
        "startupapicheck.resources",
    ],
    "flink-operator": ["operatorPod.resources", "operatorPod.webhook.resources"],
    "chorus-operator": ["resources"],
    "gitops-argocd": [
        f"{part}.resources"
        for part in (
            "controller",
            "server",
            "repoServer",
            "applicationSet",
            "redis",
            "redisSecretInit",
        )
    ],
}


def _at(tree: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        tree = tree[part]
    return tree


def _complete(resources: Any) -> bool:
    return all(
        resources.get(kind, {}).get(field)
        for kind in ("requests", "limits")
        for field in ("cpu", "memory")
    )


def test_every_workload_has_requests_and_limits(stack: tuple[StackConfig, Rendering]) -> None:
    _, rendering = stack
    checked = 0
    for item in rendering.of_type(RELEASE):
        for path in CHART_WORKLOADS[item.name]:
            assert _complete(_at(item.inputs["values"], path)), f"{item.name}: {path}"
            checked += 1
    for pool in rendering.of_type(POOL):
        assert _complete(pool.inputs["spec"]["resources"]), pool.name
        checked += 1
    spec = kafka_spec(rendering)
    for part in ("topicOperator", "userOperator"):
        assert _complete(spec["entityOperator"][part]["resources"]), part
        checked += 1
    if "kafkaExporter" in spec:
        assert _complete(spec["kafkaExporter"]["resources"])
    assert checked >= 7


# --- ordering ----------------------------------------------------------------------------


def test_custom_resources_wait_for_their_operator_charts(
    stack: tuple[StackConfig, Rendering],
) -> None:
    config, rendering = stack
    for item in [*rendering.of_type(KAFKA), *rendering.of_type(POOL)]:
        assert rendering.depends_on(item.name, "kafka-strimzi"), item.name
    for pool in rendering.of_type(POOL):
        assert rendering.depends_on("kafka-cluster", pool.name)
    if config.gitops.enabled:
        assert rendering.depends_on("gitops-domains", "gitops-argocd")
        assert rendering.depends_on("gitops-domains", "chorus-operator")  # Agent/Tool CRDs
        assert rendering.depends_on("gitops-domains", "flink-namespace-trading")
    for item in rendering.of_type(KUSTOMIZE):
        assert rendering.depends_on(item.name, "chorus-operator"), item.name


def test_operators_start_in_dependency_order(stack: tuple[StackConfig, Rendering]) -> None:
    config, rendering = stack
    assert rendering.depends_on("kafka-strimzi", "kafka-namespace")
    assert rendering.depends_on("chorus-operator", "kafka-cluster")  # a Ready Kafka
    assert rendering.depends_on("chorus-operator", "flink-operator")  # FlinkDeployment CRD
    assert rendering.depends_on("flink-operator", "flink-namespace-trading")
    if config.flink.webhook:
        assert rendering.depends_on("flink-operator", "flink-cert-manager")
    for name in (
        "flink-job-account-trading",
        "flink-job-role-trading",
        "flink-job-role-binding-trading",
    ):
        assert rendering.depends_on(name, "flink-namespace-trading"), name
    # Nothing waits on what comes after it.
    assert not rendering.depends_on("kafka-cluster", "chorus-operator")
    assert not rendering.depends_on("kafka-strimzi", "flink-operator")


# --- the objects are exactly the pure builders' manifests --------------------------------


def identity(manifest: dict[str, Any]) -> tuple[str, str, str]:
    metadata = manifest["metadata"]
    return manifest["kind"], metadata.get("namespace", ""), metadata["name"]


def test_objects_declared_are_the_manifests_the_apiserver_test_checks(
    stack: tuple[StackConfig, Rendering],
) -> None:
    config, rendering = stack
    expected = sorted(manifests.declared_objects(config), key=identity)
    created = sorted((item.inputs for item in rendering.objects()), key=identity)
    assert [identity(item) for item in created] == [identity(item) for item in expected]
    # Equal as data (the mocks hand numbers back as floats, and 9092.0 == 9092).
    assert created == expected


# --- GitOps ------------------------------------------------------------------------------


def test_application_set_syncs_each_domain_tools_before_agents(prod: Rendering) -> None:
    spec = prod.named("gitops-domains").inputs["spec"]
    assert spec["generators"] == [
        {"list": {"elements": [{"domain": "trading", "namespace": "trading"}]}}
    ]
    # Deleting a domain's Application deletes its Agents and Tools (teardown order).
    assert spec["template"]["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    template = spec["template"]["spec"]
    assert template["source"]["repoURL"] == REPO_URL
    assert template["source"]["path"] == "agents/{{.domain}}/deploy"
    assert template["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": "{{.namespace}}",
    }
    assert template["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    waves = {}
    for patch in template["source"]["kustomize"]["patches"]:
        body = yaml.safe_load(patch["patch"])
        assert (body["kind"], body["apiVersion"]) == (
            patch["target"]["kind"],
            "chorus.dev/v1alpha1",
        )
        waves[body["kind"]] = int(body["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    assert waves["Tool"] < waves["Agent"]


def test_argocd_waits_for_tools_to_be_ready_not_just_applied(prod: Rendering) -> None:
    settings = release(prod, "gitops-argocd")["values"]["configs"]["cm"]
    for kind in ("Tool", "Agent"):
        check = settings[f"resource.customizations.health.chorus.dev_{kind}"]
        assert 'condition.type == "Ready"' in check and 'hs.status = "Healthy"' in check


def test_reference_agents_come_from_pulumi_only_without_gitops(
    dev: Rendering, prod: Rendering
) -> None:
    [agents] = dev.of_type(KUSTOMIZE)
    assert agents.inputs == {"directory": "agents/trading/deploy", "namespace": "trading"}
    assert not prod.of_type(KUSTOMIZE)
    assert not dev.of_type(APPSET)


# --- outputs -----------------------------------------------------------------------------


def test_dev_outputs(dev: Rendering) -> None:
    assert dev.outputs["bootstrapServers"] == "chorus-kafka-bootstrap.kafka.svc:9092"
    assert dev.outputs["listenerBootstrapServers"] == {
        "plain": "chorus-kafka-bootstrap.kafka.svc:9092"
    }
    assert dev.outputs["kafkaClusterName"] == "chorus"
    assert dev.outputs["namespaces"] == {
        "kafka": "kafka",
        "flinkOperator": "flink-operator",
        "chorus": "chorus-system",
        "domains": ["trading"],
    }
    assert set(dev.outputs["dashboards"]) == {"flink"}


def test_prod_outputs(prod: Rendering) -> None:
    assert prod.outputs["bootstrapServers"] == "chorus-kafka-bootstrap.kafka.svc:9093"
    assert prod.outputs["namespaces"] == {
        "kafka": "kafka",
        "flinkOperator": "flink-operator",
        "chorus": "chorus-system",
        "domains": ["trading"],
        "certManager": "cert-manager",
        "argocd": "argocd",
    }
    assert prod.outputs["dashboards"]["argocd"] == (
        "kubectl -n argocd port-forward svc/argocd-server 8080:443"
    )
    assert "kafkaExporter" in prod.outputs["dashboards"]


# --- __main__: config first, then resources ----------------------------------------------


def run_main(mocked: MockedStack, raw: dict[str, Any]) -> Rendering:
    """Runs infra/__main__.py as `pulumi up` would, with ``raw`` as the stack's chorus: keys."""
    pulumi.runtime.set_all_config(
        {
            f"chorus:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in raw.items()
        }
    )

    def main() -> None:
        runpy.run_path(str(REPO / "infra" / "__main__.py"), run_name="__main__")

    try:
        return mocked.run(main)
    finally:
        pulumi.runtime.set_all_config({})


def test_main_declares_the_stack_from_pulumi_config() -> None:
    rendering = run_main(MockedStack("dev"), stack_keys("dev"))
    assert {(item.type, item.name) for item in rendering.records} == DEV


def test_bad_configuration_fails_before_anything_is_created() -> None:
    raw = stack_keys("dev")
    raw["kafka"]["replication"]["factor"] = 3
    mocked = MockedStack("dev")
    with pytest.raises(pulumi.RunError) as caught:
        run_main(mocked, raw)
    assert "chorus:kafka.replication.factor: 3 is above the number of brokers (1)" in str(
        caught.value
    )
    assert mocked.rendering.records == []  # the run stopped at the configuration
