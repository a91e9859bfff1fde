"""Chorus: the Chorus operator from this repository's chart and, optionally, the reference
agents of each domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from chorus_infra import manifests, values
from chorus_infra.config import StackConfig
from chorus_infra.k8s import apply, local_release, repo_path

OPERATOR_RELEASE = "chorus-operator"


def agents_path(domain: str) -> str:
    """A domain's Agent and Tool manifests (a kustomization), as Argo CD syncs them too."""
    return f"agents/{domain}/deploy"


@dataclass(frozen=True)
class ChorusArgs:
    config: StackConfig
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    """What the operator needs running first: the Kafka (Ready) and the Flink operator."""


class Chorus(pulumi.ComponentResource):
    """The operator chart is configured with the Kafka cluster, its client listener and the
    domain namespaces; the reference agents (when on) wait for the chart's CRDs."""

    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: ChorusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("chorus:operator:Chorus", name, None, opts)
        config = args.config
        namespace = apply(
            f"{name}-namespace",
            manifests.namespace(config.operator.namespace, "operator"),
            pulumi.ResourceOptions(parent=self),
        )
        operator = local_release(
            f"{name}-operator",
            config.operator.chart_path,
            release_name=OPERATOR_RELEASE,
            namespace=config.operator.namespace,
            values=values.chorus_operator(config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *args.after]),
        )
        if config.operator.reference_agents:
            for domain in config.domains:
                k8s.kustomize.v2.Directory(
                    f"{name}-agents-{domain}",
                    directory=repo_path(agents_path(domain)),
                    namespace=domain,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[operator]),
                )
        self.namespace = namespace.id
        self.register_outputs({"namespace": self.namespace})
