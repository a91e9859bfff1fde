"""GitOps: Argo CD and the ApplicationSet that syncs each domain's agents from Git."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from chorus_infra import manifests, values
from chorus_infra.config import ARGO_CD, GitOpsConfig
from chorus_infra.k8s import apply, release


@dataclass(frozen=True)
class GitOpsArgs:
    config: GitOpsConfig
    domains: list[str]
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    """What the synced manifests need first: the Chorus CRDs and the domain namespaces."""


class GitOps(pulumi.ComponentResource):
    """Argo CD installs in parallel with the rest; only its ApplicationSet waits for ``after``."""

    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: GitOpsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("chorus:gitops:GitOps", name, None, opts)
        config = args.config
        namespace = apply(
            f"{name}-namespace",
            manifests.namespace(config.namespace, "gitops"),
            pulumi.ResourceOptions(parent=self),
        )
        argocd = release(
            f"{name}-argocd",
            ARGO_CD,
            release_name="argocd",
            namespace=config.namespace,
            values=values.argocd(config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        apply(
            f"{name}-domains",
            manifests.application_set(config, args.domains),
            pulumi.ResourceOptions(parent=self, depends_on=[argocd, *args.after]),
        )
        self.namespace = namespace.id
        self.register_outputs({"namespace": self.namespace})
