"""The chorus-operator chart: it lints, renders what the operator needs from every values the
platform passes, refuses bad values by name, and every object it renders is accepted by a
real kube-apiserver. Its RBAC is checked by asking that apiserver what the chart's own
ServiceAccount may and may not do (SubjectAccessReviews, many at once: the answers concern
only the chart's bindings, not whatever other tests bind to the shared restricted user),
and once through the restricted kubeconfig bound to the chart's ClusterRole.

Every test uses its own release name and namespaces (``uid``), so runs never collide; the
cluster-scoped objects a test creates for real are deleted at its end.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from chorus_infra import values as infra_values
from chorus_operator import kinds as operator_kinds
from chorus_operator.settings import Settings, env_name, load_settings

from tests.infra.stacks import STACKS, stack_config
from tests.services.helm import Helm, HelmError
from tests.services.kube import FIELD_MANAGER, KubeCluster, KubectlError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "chorus-operator"
PEERING_CRDS = CHART / "charts" / "kopf-peering" / "crds" / "kopf-peering.yaml"

Manifest = dict[str, Any]
Check = tuple[str, str, str | None]
"""(verb, resource as kubectl spells it, namespace or None for cluster-wide)"""


def uid() -> str:
    return f"c{secrets.token_hex(3)}"


def render(
    helm: Helm,
    values: dict[str, Any] | None = None,
    *,
    release: str = "chorus-operator",
    namespace: str = "chorus-system",
    crds: bool = False,
) -> list[Manifest]:
    """The chart's objects for ``values`` (passed as a file, the way Pulumi passes them)."""
    args = ["template", release, str(CHART), "--namespace", namespace, "--values", "-"]
    if crds:
        args.append("--include-crds")
    result = helm.run(*args, input=json.dumps(values or {}))
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_error(helm: Helm, values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as caught:
        render(helm, values)
    return caught.value.output


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def kinds(objects: list[Manifest]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container(objects: list[Manifest]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    result: dict[str, Any] = pod["containers"][0]
    return result


def env(objects: list[Manifest]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(objects)["env"]}


def pulumi_values(stack: str) -> dict[str, Any]:
    """The values the Pulumi program passes the chart for a committed stack."""
    return infra_values.chorus_operator(stack_config(stack))


# --- helm lint and the default rendering ----------------------------------------------------


def test_lint_passes_strictly(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    for stack in STACKS:
        values = json.dumps(pulumi_values(stack))
        helm.run("lint", "--strict", str(CHART), "--values", "-", input=values)


def test_chart_is_versioned() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["version"], chart["appVersion"]) == ("v2", "0.1.0", "0.1.0")


def test_default_rendering_is_a_cluster_wide_operator_with_two_peered_replicas(
    helm: Helm,
) -> None:
    objects = render(helm)
    assert kinds(objects) == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert (
        one(objects, "ClusterKopfPeering")["metadata"]["name"]
        == env(objects)["CHORUS_PEERING_NAME"]
    )
    assert env(objects)["CHORUS_STANDALONE"] == "false"
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_the_operator_runs_non_root_read_only_with_probes_and_limits(helm: Helm) -> None:
    objects = render(helm)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    main = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    health = int(env(objects)["CHORUS_HEALTH_PORT"])
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports == {"health": health, "metrics": int(env(objects)["CHORUS_METRICS_PORT"])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert set(main["resources"]) == {"requests", "limits"}
    service = one(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert (
        service["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_one_replica_has_no_disruption_budget_and_standalone_needs_one(helm: Helm) -> None:
    assert "PodDisruptionBudget" not in kinds(render(helm, {"replicas": 1}))
    single = render(helm, {"replicas": 1, "peering": {"enabled": False}})
    assert env(single)["CHORUS_STANDALONE"] == "true"
    assert "ClusterKopfPeering" not in kinds(single)
    assert "set replicas to 1" in render_error(helm, {"peering": {"enabled": False}})


# --- values -> the operator's settings ----------------------------------------------------


def test_every_variable_the_chart_sets_is_an_operator_setting(helm: Helm) -> None:
    known = {env_name(field.name) for field in dataclasses.fields(Settings)}
    for values in ({}, pulumi_values("prod"), {"watchNamespaces": ["a", "b"]}):
        assert set(env(render(helm, values))) <= known


@pytest.mark.parametrize("stack", STACKS)
def test_pulumi_values_reach_the_operator(helm: Helm, stack: str) -> None:
    values = pulumi_values(stack)
    objects = render(helm, values)
    settings = load_settings(env(objects))
    kafka = values["kafka"]
    assert settings.namespaces == tuple(values["watchNamespaces"])
    assert settings.kafka_cluster == kafka["clusterName"]
    assert settings.kafka_namespace == kafka["namespace"]
    assert settings.bootstrap_servers == kafka["bootstrapServers"]
    assert settings.kafka_tls is kafka["tls"]
    assert settings.kafka_authentication == kafka["authentication"]
    assert settings.kafka_authorization is kafka["authorization"]
    assert settings.flink_service_account == values["flink"]["serviceAccount"]
    assert container(objects)["resources"] == values["resources"]
    # Watching listed namespaces, kopf peers in each of them.
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(values["watchNamespaces"])
    assert "ClusterKopfPeering" not in kinds(objects)


def test_prod_values_configure_tls_and_scram(helm: Helm) -> None:
    settings = load_settings(env(render(helm, pulumi_values("prod"))))
    assert (settings.kafka_tls, settings.kafka_authentication) == (True, "scram-sha-512")
    assert settings.kafka_authorization is True
    assert settings.bootstrap_servers.endswith(":9093")


def test_defaults_equal_the_operator_defaults(helm: Helm) -> None:
    """A chart installed without values configures the operator as its own defaults do."""
    rendered = load_settings(env(render(helm)))
    assert rendered == dataclasses.replace(Settings(), standalone=False)


# --- the schema refuses bad values, naming the key ----------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka": {"tls": "yes"}}, "/kafka/tls"),
        ({"kafka": {"unknownKey": 1}}, "unknownKey"),
        ({"kafka": {"authentication": "plain"}}, "/kafka/authentication"),
        ({"rbac": {"scope": "cluster-wide"}}, "/rbac/scope"),
        ({"replicas": "2"}, "/replicas"),
        ({"replicas": 0}, "/replicas"),
        ({"watchNamespaces": "trading"}, "/watchNamespaces"),
        ({"watchNamespaces": ["Trading"]}, "/watchNamespaces/0"),
        ({"resources": {"limits": {"gpu": 1}}}, "gpu"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"image": {"tag": 1}}, "/image/tag"),
        ({"operatorImage": "x"}, "operatorImage"),
    ],
)
def test_schema_refuses_bad_values_naming_the_key(
    helm: Helm, values: dict[str, Any], named: str
) -> None:
    message = render_error(helm, values)
    assert "don't meet the specifications of the schema" in message
    assert named in message


def test_namespace_scope_needs_namespaces(helm: Helm) -> None:
    message = render_error(helm, {"rbac": {"scope": "namespace"}})
    assert "rbac.scope=namespace needs watchNamespaces" in message


# --- RBAC shape ---------------------------------------------------------------------------


def rules_of(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_namespace_scope_is_a_role_per_watched_namespace_and_the_kafka_namespace(
    helm: Helm,
) -> None:
    values = {"rbac": {"scope": "namespace"}, "watchNamespaces": ["trading", "iot"]}
    objects = render(helm, values)
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    assert sorted(roles) == ["iot", "kafka", "trading"]
    bindings = {o["metadata"]["namespace"] for o in objects if o["kind"] == "RoleBinding"}
    assert bindings == {"iot", "kafka", "trading"}
    # The one cluster-level grant left is reading CRDs and namespaces.
    (cluster_role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert rules_of(cluster_role) == {
        (group, resource, verb)
        for group, resource in (
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("", "namespaces"),
        )
        for verb in ("get", "list", "watch")
    }
    assert ("kopf.dev", "kopfpeerings", "patch") in rules_of(roles["trading"])
    assert ("kafka.strimzi.io", "kafkatopics", "create") in rules_of(roles["kafka"])
    assert ("kafka.strimzi.io", "kafkatopics", "create") not in rules_of(roles["trading"])


def test_no_rule_grants_wildcards_escalation_or_secret_listing(helm: Helm) -> None:
    for values in ({}, {"rbac": {"scope": "namespace"}, "watchNamespaces": ["a"]}):
        for role in render(helm, values):
            if role["kind"] not in {"Role", "ClusterRole"}:
                continue
            granted = rules_of(role)
            assert not {r for r in granted if "*" in r}, role["metadata"]["name"]
            assert not {r for r in granted if r[2] in {"escalate", "bind", "impersonate"}}
            assert {verb for _, res, verb in granted if res == "secrets"} <= {"get"}
            # pods: list only, to tell why an agent's workload is not available (the
            # kubelet's reason); never a subresource (exec, attach, log) nor a write
            assert {r for r in granted if r[1].startswith("pods")} <= {("", "pods", "list")}


# --- the real apiserver -------------------------------------------------------------------


@pytest.fixture(scope="module")
def peering_crds(kube: KubeCluster) -> None:
    """kopf's peering CRDs (the chart's subchart installs them first; here they are applied)."""
    kube.kubectl(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", str(PEERING_CRDS)
    )
    kube.kubectl("wait", "--for=condition=established", "--timeout=60s", "-f", str(PEERING_CRDS))


def create_namespaces(kube: KubeCluster, *names: str) -> None:
    kube.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in names]
    )


def isolated_values(base: dict[str, Any], tag: str) -> tuple[dict[str, Any], list[str]]:
    """``base`` with the Kafka and watched namespaces and the peering renamed under ``tag``."""
    values = json.loads(json.dumps(base))
    kafka = values.setdefault("kafka", {})
    kafka["namespace"] = f"{tag}-{kafka.get('namespace', 'kafka')}"
    values["watchNamespaces"] = [f"{tag}-{ns}" for ns in values.get("watchNamespaces", [])]
    values.setdefault("peering", {})["name"] = f"{tag}-peering"
    return values, [kafka["namespace"], *values["watchNamespaces"]]


@pytest.mark.parametrize(
    "base",
    [
        {},
        {"rbac": {"scope": "namespace"}, "watchNamespaces": ["trading", "iot"]},
        *(pulumi_values(stack) for stack in STACKS),
    ],
    ids=["default", "namespace-scope", *(f"pulumi-{stack}" for stack in STACKS)],
)
def test_every_rendered_object_is_accepted_by_the_apiserver(
    helm: Helm, kube: KubeCluster, peering_crds: None, base: dict[str, Any]
) -> None:
    tag = uid()
    values, namespaces = isolated_values(base, tag)
    release_namespace = f"{tag}-system"
    create_namespaces(kube, release_namespace, *namespaces)
    objects = render(helm, values, release=f"{tag}-chorus", namespace=release_namespace)
    result = kube.apply(objects, dry_run=True)
    applied = [line for line in result.stdout.splitlines() if "serverside-applied" in line]
    assert len(applied) == len(objects), result.stdout


def test_crds_of_the_chart_are_accepted_by_the_apiserver(
    helm: Helm, kube: KubeCluster, peering_crds: None
) -> None:
    crds = [o for o in render(helm, crds=True) if o["kind"] == "CustomResourceDefinition"]
    names = {crd["metadata"]["name"] for crd in crds}
    assert names == {
        "agents.chorus.dev",
        "tools.chorus.dev",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }
    kube.apply(crds, dry_run=True)


def test_apiserver_refuses_a_peering_object_of_an_unknown_kind(
    kube: KubeCluster, peering_crds: None
) -> None:
    """The dry run above is a real check: a kind the apiserver does not serve is refused."""
    with pytest.raises(KubectlError):
        kube.apply(
            {"apiVersion": "kopf.dev/v1", "kind": "KopfPeeringz", "metadata": {"name": uid()}},
            dry_run=True,
        )


# --- RBAC against the apiserver -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Installed:
    """The chart's RBAC applied for real; ``can`` asks the apiserver about its ServiceAccount.

    Asking with a SubjectAccessReview (as ``kubectl auth can-i --as`` would) names the API
    group explicitly, so resources whose CRDs the test cluster lacks (KEDA) are asked too.
    """

    kube: KubeCluster
    namespace: str
    account: str
    watched: str
    kafka: str
    other: str

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        """``resource`` as kubectl spells it: ``plural[.group][/subresource]``."""
        return self.can_each([(verb, resource, namespace)])[0]

    def can_each(self, checks: Sequence[Check]) -> list[bool]:
        """The answers to many ``(verb, resource, namespace)`` questions, asked at once."""
        reviews = []
        for verb, spelled, namespace in checks:
            resource, _, subresource = spelled.partition("/")
            plural, _, group = resource.partition(".")
            attributes = {"verb": verb, "group": group, "resource": plural}
            if subresource:
                attributes["subresource"] = subresource
            if namespace is not None:
                attributes["namespace"] = namespace
            reviews.append(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": f"system:serviceaccount:{self.namespace}:{self.account}",
                        "groups": [
                            "system:serviceaccounts",
                            f"system:serviceaccounts:{self.namespace}",
                            "system:authenticated",
                        ],
                        "resourceAttributes": attributes,
                    },
                }
            )
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": reviews})
        result = self.kube.kubectl("create", "-o", "json", "-f", "-", input=text)
        items = json_stream(result.stdout)  # one object per review, in order
        assert len(items) == len(checks)
        return [bool(item["status"].get("allowed", False)) for item in items]

    def refused(self, checks: Sequence[Check]) -> list[Check]:
        return [c for c, ok in zip(checks, self.can_each(checks), strict=True) if not ok]

    def granted(self, checks: Sequence[Check]) -> list[Check]:
        return [c for c, ok in zip(checks, self.can_each(checks), strict=True) if ok]


def json_stream(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one after another (kubectl -o json of several objects)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        item, at = decoder.raw_decode(text, at)
        found.append(item)
    return found


def install_rbac(helm: Helm, kube: KubeCluster, base: dict[str, Any]) -> Iterator[Installed]:
    tag = uid()
    values, namespaces = isolated_values(base, tag)
    release_namespace, other = f"{tag}-system", f"{tag}-other"
    create_namespaces(kube, release_namespace, other, *namespaces)
    objects = render(helm, values, release=f"{tag}-chorus", namespace=release_namespace)
    rbac = [
        o
        for o in objects
        if o["kind"]
        in {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    ]
    kube.apply(rbac)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    try:
        yield Installed(
            kube,
            namespace=release_namespace,
            account=account,
            watched=values["watchNamespaces"][0] if values["watchNamespaces"] else other,
            kafka=values["kafka"]["namespace"],
            other=other,
        )
    finally:
        for o in rbac:
            if "namespace" not in o["metadata"]:
                kube.kubectl(
                    "delete", o["kind"].lower(), o["metadata"]["name"], "--ignore-not-found"
                )


@pytest.fixture(params=["cluster", "namespace"])
def installed(request: pytest.FixtureRequest, helm: Helm, kube: KubeCluster) -> Iterator[Installed]:
    base: dict[str, Any] = {}
    if request.param == "namespace":
        base = {"rbac": {"scope": "namespace"}, "watchNamespaces": ["trading"]}
    yield from install_rbac(helm, kube, base)


# What the operator does where it watches Agents and Tools.
WATCHED = [
    *(
        (verb, res)
        for res in ("agents.chorus.dev", "tools.chorus.dev")
        for verb in ("get", "list", "watch", "patch")
    ),
    ("patch", "agents.chorus.dev/status"),
    ("patch", "tools.chorus.dev/status"),
    ("update", "agents.chorus.dev/finalizers"),
    *(
        (verb, res)
        for res in (
            "deployments.apps",
            "serviceaccounts",
            "configmaps",
            "services",
            "networkpolicies.networking.k8s.io",
            "horizontalpodautoscalers.autoscaling",
            "scaledobjects.keda.sh",
            "flinkdeployments.flink.apache.org",
            "flinksessionjobs.flink.apache.org",
        )
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ),
    ("get", "secrets"),
    ("create", "events"),
    ("patch", "events"),
]
# What it does in the Kafka namespace.
KAFKA = [
    *(
        (verb, res)
        for res in ("kafkatopics.kafka.strimzi.io", "kafkausers.kafka.strimzi.io")
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ),
    *((verb, "kafkas.kafka.strimzi.io") for verb in ("get", "list", "watch")),
    *(
        (verb, res)
        for res in ("roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io")
        for verb in ("create", "patch", "delete", "get")
    ),
    ("get", "secrets"),
]
# What it must never do, anywhere.
NEVER = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("create", "pods/exec"),
    ("get", "pods"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("update", "agents.chorus.dev"),
    ("delete", "agents.chorus.dev"),
    ("create", "kafkas.kafka.strimzi.io"),
    ("impersonate", "serviceaccounts"),
]


def test_rbac_grants_what_the_operator_does(installed: Installed) -> None:
    checks = [
        (verb, res, ns)
        for ns, needed in ((installed.watched, WATCHED), (installed.kafka, KAFKA))
        for verb, res in needed
    ]
    assert not installed.refused(checks)
    assert installed.can("list", "customresourcedefinitions.apiextensions.k8s.io")


def test_rbac_grants_nothing_more(installed: Installed) -> None:
    checks = [
        (verb, res, ns) for ns in (installed.watched, installed.kafka, None) for verb, res in NEVER
    ]
    assert not installed.granted(checks)
    # Kafka children only in the Kafka namespace; RBAC objects never where agents run.
    assert not installed.can("create", "kafkatopics.kafka.strimzi.io", installed.watched)
    assert not installed.can("create", "roles.rbac.authorization.k8s.io", installed.watched)


def test_namespace_scope_grants_nothing_outside_its_namespaces(
    helm: Helm, kube: KubeCluster
) -> None:
    base = {"rbac": {"scope": "namespace"}, "watchNamespaces": ["trading"]}
    for installed in install_rbac(helm, kube, base):
        assert installed.can("create", "deployments.apps", installed.watched)
        assert not installed.can("create", "deployments.apps", installed.other)
        assert not installed.can("get", "secrets", installed.other)
        assert not installed.can("list", "agents.chorus.dev")  # cluster-wide


def role_granting(namespace: str, verbs: list[str], name: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": verbs}
        ],
    }


def test_operator_may_grant_an_agent_get_on_its_secret_but_no_more(installed: Installed) -> None:
    """The apiserver's escalation check: a Role is created only if it grants what the operator
    holds itself; `get` on a named Secret passes, `list` is refused."""
    kube = installed.kube
    as_operator = f"--as=system:serviceaccount:{installed.namespace}:{installed.account}"
    allowed = yaml.safe_dump(role_granting(installed.kafka, ["get"], "agent-a"))
    kube.kubectl("create", "--dry-run=server", as_operator, "-f", "-", input=allowed)
    refused = yaml.safe_dump(role_granting(installed.kafka, ["get", "list"], "agent-b"))
    result = kube.kubectl(
        "create", "--dry-run=server", as_operator, "-f", "-", input=refused, check=False
    )
    assert result.returncode != 0
    assert "forbidden" in result.stderr and "permissions not currently held" in result.stderr


# What chorus_operator.kinds declares beyond what the operator does, so the chart leaves it
# out: it only ever gets Secrets by name, updates nothing (server-side apply patches; kopf
# patches), posts core events, and finds the chart's peering objects already made.
NOT_GRANTED = {
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("kopf.dev", "clusterkopfpeerings", "create"),
    ("kopf.dev", "kopfpeerings", "create"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
}


def test_rbac_covers_the_kinds_the_operator_declares(helm: Helm, kube: KubeCluster) -> None:
    """Every verb ``chorus_operator.kinds`` says the operator uses, where it uses it."""
    for installed in install_rbac(helm, kube, {}):
        checks: list[Check] = []
        for kind in operator_kinds.KINDS:
            if kind.plural == "kopfpeerings":
                continue  # watching every namespace, kopf peers through a ClusterKopfPeering
            if not kind.namespaced:
                where: str | None = None
            elif kind.group in {"kafka.strimzi.io", "rbac.authorization.k8s.io"}:
                where = installed.kafka
            else:
                where = installed.watched
            plural = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
            for verb in kind.verbs:
                if verb == "update" or (kind.group, kind.plural, verb) in NOT_GRANTED:
                    continue
                checks.append((verb, plural, where))
        for subresource in operator_kinds.STATUS_SUBRESOURCES:
            resource, _, sub = subresource.partition("/")
            checks.append(("patch", f"{resource}.chorus.dev/{sub}", installed.watched))
        assert not installed.refused(checks)
        # Cluster-wide, kopf watches the Kafka children everywhere (it writes them in one place).
        assert installed.can("watch", "kafkatopics.kafka.strimzi.io")
        assert not installed.can("create", "kafkatopics.kafka.strimzi.io", installed.watched)


def test_restricted_user_bound_to_the_cluster_role_can_do_exactly_its_work(
    helm: Helm, kube: KubeCluster
) -> None:
    """The same answers through the restricted kubeconfig's own `kubectl auth can-i`, with
    the chart's ClusterRole bound to user ``chorus-restricted`` by this test."""
    tag = uid()
    release_namespace, agents = f"{tag}-system", f"{tag}-agents"
    create_namespaces(kube, release_namespace, agents)
    objects = render(helm, {}, release=f"{tag}-chorus", namespace=release_namespace)
    role = next(
        o
        for o in objects
        if o["kind"] == "ClusterRole" and "cluster-read" not in o["metadata"]["name"]
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{tag}-restricted"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "chorus-restricted"}
        ],
    }
    kube.apply([role, binding])

    def can(*args: str) -> bool:
        result = kube.kubectl("auth", "can-i", *args, restricted=True, check=False)
        assert result.stdout.strip() in {"yes", "no"}, result.stderr
        return result.stdout.strip() == "yes"

    try:
        assert can("create", "deployments.apps", "-n", agents)
        assert can("patch", "agents.chorus.dev", "--subresource=status", "-n", agents)
        assert can("get", "secrets", "-n", agents)
        assert can("watch", "agents.chorus.dev", "--all-namespaces")
        assert not can("list", "secrets", "--all-namespaces")
        assert not can("watch", "secrets", "-n", agents)
        assert not can("create", "pods", "--subresource=exec", "-n", agents)
        assert not can("delete", "customresourcedefinitions.apiextensions.k8s.io")
    finally:
        kube.kubectl("delete", "clusterrolebinding", f"{tag}-restricted", "--ignore-not-found")
        kube.kubectl("delete", "clusterrole", role["metadata"]["name"], "--ignore-not-found")
