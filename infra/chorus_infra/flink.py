"""FlinkPlatform: cert-manager (when the webhook is on), the Flink Kubernetes Operator, and
the domain namespaces it watches with the ServiceAccount and RBAC Flink jobs run as."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from chorus_infra import manifests, values
from chorus_infra.config import CERT_MANAGER, FLINK_OPERATOR, FlinkConfig
from chorus_infra.k8s import apply, release


@dataclass(frozen=True)
class FlinkPlatformArgs:
    config: FlinkConfig
    domains: list[str]


class FlinkPlatform(pulumi.ComponentResource):
    """The operator release waits for cert-manager (its webhook certificate) and for the
    watched namespaces (the chart puts the operator's Roles there)."""

    operator_namespace: pulumi.Output[str]
    job_namespaces: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: FlinkPlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("chorus:flink:FlinkPlatform", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        before_operator: list[pulumi.Resource] = []
        if config.webhook:
            cert_namespace = apply(
                f"{name}-cert-manager-namespace",
                manifests.namespace(config.cert_manager_namespace, "cert-manager"),
                child,
            )
            before_operator.append(
                release(
                    f"{name}-cert-manager",
                    CERT_MANAGER,
                    release_name="cert-manager",
                    namespace=config.cert_manager_namespace,
                    values=values.cert_manager(config),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[cert_namespace]),
                )
            )
        operator_namespace = apply(
            f"{name}-operator-namespace",
            manifests.namespace(config.operator_namespace, "flink"),
            child,
        )
        before_operator.append(operator_namespace)
        job_namespaces = []
        for domain in args.domains:
            domain_namespace = apply(
                f"{name}-namespace-{domain}", manifests.namespace(domain, "domain"), child
            )
            in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[domain_namespace])
            account = config.job_service_account
            apply(
                f"{name}-job-account-{domain}",
                manifests.flink_job_service_account(domain, account),
                in_namespace,
            )
            apply(f"{name}-job-role-{domain}", manifests.flink_job_role(domain), in_namespace)
            apply(
                f"{name}-job-role-binding-{domain}",
                manifests.flink_job_role_binding(domain, account),
                in_namespace,
            )
            before_operator.append(domain_namespace)
            job_namespaces.append(domain_namespace)
        release(
            f"{name}-operator",
            FLINK_OPERATOR,
            release_name="flink-kubernetes-operator",
            namespace=config.operator_namespace,
            values=values.flink_operator(config, args.domains),
            opts=pulumi.ResourceOptions(parent=self, depends_on=before_operator),
        )
        self.operator_namespace = operator_namespace.id
        self.job_namespaces = pulumi.Output.all(*[item.id for item in job_namespaces])
        self.register_outputs(
            {"operatorNamespace": self.operator_namespace, "jobNamespaces": self.job_namespaces}
        )
