"""KafkaPlatform: the Strimzi operator and a KRaft Kafka cluster built from node pools."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from chorus_infra import manifests, values
from chorus_infra.config import STRIMZI, KafkaConfig
from chorus_infra.k8s import apply, release

KAFKA_READY_TIMEOUT = "30m"


@dataclass(frozen=True)
class KafkaPlatformArgs:
    config: KafkaConfig


class KafkaPlatform(pulumi.ComponentResource):
    """A namespace, the Strimzi cluster operator (Helm), the KafkaNodePools and the Kafka.

    The node pools and the Kafka depend on the operator release (its CRDs), and the Kafka
    carries ``pulumi.com/waitFor: condition=Ready``: anything that depends on this component
    starts only once Strimzi reports the cluster Ready.
    """

    namespace: pulumi.Output[str]
    bootstrap_servers: pulumi.Output[str]
    listener_addresses: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: KafkaPlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("chorus:kafka:KafkaPlatform", name, None, opts)
        config = args.config
        namespace = apply(
            f"{name}-namespace",
            manifests.namespace(config.namespace, "kafka"),
            pulumi.ResourceOptions(parent=self),
        )
        operator = release(
            f"{name}-strimzi",
            STRIMZI,
            release_name="strimzi",
            namespace=config.namespace,
            values=values.strimzi(config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        pools = [
            apply(
                f"{name}-pool-{pool.name}",
                manifests.kafka_node_pool(config, pool),
                pulumi.ResourceOptions(parent=self, depends_on=[operator]),
            )
            for pool in config.node_pools
        ]
        cluster = apply(
            f"{name}-cluster",
            manifests.kafka_cluster(config),
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[operator, *pools],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=KAFKA_READY_TIMEOUT, update=KAFKA_READY_TIMEOUT
                ),
            ),
        )
        addresses = {
            item.name: manifests.bootstrap_address(config, item) for item in config.listeners
        }
        client = manifests.bootstrap_address(config, config.client)
        # Derived from the cluster's id, so they resolve only once the Kafka is Ready.
        self.namespace = namespace.id
        self.bootstrap_servers = cluster.id.apply(lambda _: client)
        self.listener_addresses = cluster.id.apply(lambda _: addresses)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "bootstrapServers": self.bootstrap_servers,
                "listenerAddresses": self.listener_addresses,
            }
        )
