"""A stand-in for Strimzi's operators: Strimzi's images cannot be had on this machine.

It is not Strimzi. It plays the part of Strimzi's cluster, topic and user operators for one
``Kafka`` cluster name in one namespace, on the harness's one broker (SASL/SCRAM, the
StandardAuthorizer), as a kopf process beside the test cluster:

- a ``Kafka`` gets the status Strimzi writes once the cluster is up: ``Ready``, a listener
  entry per listener of the spec with the broker's address as ``bootstrapServers`` (the
  address clients reach, ``--client-bootstrap``), the ``clusterId``;
- a ``KafkaTopic`` (labelled ``strimzi.io/cluster``) becomes a real topic: partitions,
  replicas (capped at the broker count), config; it grows on update, a partition decrease
  is refused ``NotSupported`` as Strimzi refuses it, and deleting it deletes the topic;
- a ``KafkaUser`` (``scram-sha-512``) becomes a real SCRAM user with a random password
  (kept across restarts: read back from its Secret), exactly its ``simple`` ACLs, and the
  Secret Strimzi writes (named as the user: ``password``, ``sasl.jaas.config``); deleting it
  removes the credentials, the ACLs and the Secret. Other authentication types are refused.

Statuses carry ``observedGeneration`` and a ``Ready`` condition
(:mod:`tests.standins.strimzi_state`). Run::

    KUBECONFIG=... python -m tests.standins.strimzi --namespace kafka --cluster chorus \\
        --bootstrap HOST:PORT --username admin --password ... [--client-bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import kopf
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from tests.services.acls import acl_bindings
from tests.services.kafka import SCRAM, KafkaBroker, admin
from tests.standins.strimzi_state import (
    CLUSTER_LABEL,
    STRIMZI_GROUP,
    STRIMZI_VERSION,
    TopicRefused,
    kafka_status,
    not_ready,
    ready,
    topic_plan,
    user_secret,
)

FINALIZER = "strimzi.io/stand-in"
FIELD_MANAGER = "strimzi-stand-in"
TIMEOUT = 30.0
BACKOFF = 2.0
"""Seconds before a failed handler runs again (kopf's default is a minute)."""
log = logging.getLogger("strimzi-stand-in")


@dataclass
class StandIn:
    """What the stand-in acts on: the broker (as its super user), the cluster's name."""

    broker: KafkaBroker
    cluster: str
    client_bootstrap: str
    kubeconfig: str
    client: Any = field(init=False)
    """One Admin client for the process: a collected client cancels its futures."""

    def __post_init__(self) -> None:
        self.client = admin(self.broker)

    def admin(self) -> Any:
        return self.client


# --- the broker (blocking: run in a thread) ----------------------------------------------


def _cluster(stand_in: StandIn) -> tuple[str, int]:
    described = stand_in.admin().describe_cluster().result(timeout=TIMEOUT)
    return str(described.cluster_id), len(described.nodes)


def _partitions(stand_in: StandIn, topic: str) -> int | None:
    # Every topic's metadata, not the one topic's: asking for one by name makes a broker
    # that auto-creates topics create it.
    found = stand_in.admin().list_topics(timeout=TIMEOUT).topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def _apply_topic(stand_in: StandIn, name: str, spec: Mapping[str, Any]) -> str:
    from confluent_kafka.admin._config import (  # not re-exported for type checkers
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )
    from confluent_kafka.cimpl import NewPartitions, NewTopic

    client = stand_in.admin()
    _, brokers = _cluster(stand_in)
    existing = _partitions(stand_in, str(spec.get("topicName") or name))
    plan = topic_plan(name, spec, brokers, existing)
    if existing is None:
        new = NewTopic(plan.name, plan.partitions, plan.replicas, config=plan.config)
        for future in client.create_topics([new]).values():
            future.result(timeout=TIMEOUT)
    else:
        if plan.partitions > existing:
            more = NewPartitions(plan.name, plan.partitions)
            for future in client.create_partitions([more]).values():
                future.result(timeout=TIMEOUT)
        if plan.config:
            entries = [
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in plan.config.items()
            ]
            resource = ConfigResource("topic", plan.name, incremental_configs=entries)
            for future in client.incremental_alter_configs([resource]).values():
                future.result(timeout=TIMEOUT)
    return plan.name


def every_acl_of(user: str) -> Any:
    """A filter matching every ACL binding of ``User:<user>`` (None: any name, any host)."""
    from confluent_kafka.admin._acl import AclBindingFilter, AclOperation, AclPermissionType
    from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

    any_value: Any = None  # the filter's "any"; the stubs type the fields as str
    return AclBindingFilter(
        ResourceType.ANY,
        any_value,
        ResourcePatternType.ANY,
        f"User:{user}",
        any_value,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def _delete_topic(stand_in: StandIn, topic: str) -> None:
    for future in stand_in.admin().delete_topics([topic]).values():
        try:
            future.result(timeout=TIMEOUT)
        except Exception as exc:  # an unknown topic is already gone
            if "UNKNOWN_TOPIC" not in str(exc):
                raise


def _apply_user(stand_in: StandIn, user: str, password: str, acls: Sequence[Any]) -> None:
    from confluent_kafka.admin._scram import (  # not re-exported for type checkers
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    client = stand_in.admin()
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upsert = UserScramCredentialUpsertion(user, info, password.encode())
    for future in client.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=TIMEOUT)
    # Exactly the spec's ACLs: the user's old bindings go first.
    every = every_acl_of(user)
    client.delete_acls([every])[every].result(timeout=TIMEOUT)
    bindings = acl_bindings(user, acls)
    for future in (client.create_acls(bindings) if bindings else {}).values():
        future.result(timeout=TIMEOUT)


def _delete_user(stand_in: StandIn, user: str) -> None:
    from confluent_kafka.admin._scram import ScramMechanism, UserScramCredentialDeletion

    client = stand_in.admin()
    deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
    for future in client.alter_user_scram_credentials([deletion]).values():
        try:
            future.result(timeout=TIMEOUT)
        except Exception as exc:  # no such credential: already gone
            if "RESOURCE_NOT_FOUND" not in str(exc):
                raise
    every = every_acl_of(user)
    client.delete_acls([every])[every].result(timeout=TIMEOUT)


# --- the handlers ------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, stand_in: StandIn) -> None:
    """The stand-in's handlers on ``registry``."""
    ours = {CLUSTER_LABEL: stand_in.cluster}

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.posting.enabled = False

    async def kafka(
        name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], patch: Any, **_: Any
    ) -> None:
        if name != stand_in.cluster:
            return
        cluster_id, _nodes = await asyncio.to_thread(_cluster, stand_in)
        status = kafka_status(spec, meta.get("generation"), stand_in.client_bootstrap, cluster_id)
        patch.status.update(status)

    async def topic(
        name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], patch: Any, **_: Any
    ) -> None:
        generation = meta.get("generation")
        try:
            topic_name = await asyncio.to_thread(_apply_topic, stand_in, name, spec)
        except TopicRefused as refused:
            patch.status.update(not_ready(generation, refused.reason, str(refused)))
            return
        patch.status.update(ready(generation, topicName=topic_name))

    async def topic_gone(name: str, spec: Mapping[str, Any], **_: Any) -> None:
        await asyncio.to_thread(_delete_topic, stand_in, str(spec.get("topicName") or name))

    async def user(
        name: str,
        namespace: str | None,
        spec: Mapping[str, Any],
        meta: Mapping[str, Any],
        patch: Any,
        **_: Any,
    ) -> None:
        generation = meta.get("generation")
        assert namespace is not None  # KafkaUsers are namespaced
        kind = (spec.get("authentication") or {}).get("type")
        if kind != "scram-sha-512":
            message = f"authentication type {kind!r}: the stand-in makes scram-sha-512 users only"
            patch.status.update(not_ready(generation, "InvalidResourceException", message))
            return
        async with kube(stand_in) as client:
            password = await known_password(client, name, namespace) or secrets.token_urlsafe(18)
            acls = (spec.get("authorization") or {}).get("acls") or []
            await asyncio.to_thread(_apply_user, stand_in, name, password, acls)
            owner = {"name": name, "uid": meta["uid"]}
            secret = user_secret(name, namespace, stand_in.cluster, password, owner)
            await client.patch(
                Secret,
                name,
                secret,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
        patch.status.update(ready(generation, username=name, secret=name))

    async def user_gone(name: str, namespace: str | None, **_: Any) -> None:
        await asyncio.to_thread(_delete_user, stand_in, name)
        assert namespace is not None  # KafkaUsers are namespaced
        async with kube(stand_in) as client:
            try:
                await client.delete(Secret, name, namespace=namespace)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise

    def on_changes(plural: str, handler: Any, labels: Mapping[str, str] | None = None) -> None:
        """``handler`` for every change of ``plural``: resumed, created, updated."""
        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(
                STRIMZI_GROUP, STRIMZI_VERSION, plural,
                labels=labels, backoff=BACKOFF, registry=registry,
            )(handler)  # fmt: skip

    def on_delete(plural: str, handler: Any) -> None:
        kopf.on.delete(
            STRIMZI_GROUP, STRIMZI_VERSION, plural, labels=ours, backoff=BACKOFF, registry=registry
        )(handler)

    on_changes("kafkas", kafka)
    on_changes("kafkatopics", topic, ours)
    on_delete("kafkatopics", topic_gone)
    on_changes("kafkausers", user, ours)
    on_delete("kafkausers", user_gone)


@asynccontextmanager
async def kube(stand_in: StandIn) -> AsyncIterator[AsyncClient]:
    """A lightkube client of the stand-in's kubeconfig, closed on exit."""
    client = AsyncClient(config=KubeConfig.from_file(stand_in.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


async def known_password(client: AsyncClient, user: str, namespace: str) -> str | None:
    """The password in the user's Secret, when one was written before (a restart)."""
    try:
        found = await client.get(Secret, user, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    encoded = (found.data or {}).get("password")
    return base64.b64decode(encoded).decode() if encoded else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.strimzi", description=__doc__)
    parser.add_argument("--namespace", required=True, help="Where the Kafka resources live.")
    parser.add_argument("--cluster", required=True, help="The Kafka resource's name.")
    parser.add_argument("--bootstrap", required=True, help="The broker, as its super user.")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--client-bootstrap", help="What the Kafka status advertises.")
    parser.add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    broker = KafkaBroker(
        bootstrap_servers=args.bootstrap,
        pid=0,
        log_file="",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=SCRAM,
        username=args.username,
        password=args.password,
    )
    stand_in = StandIn(
        broker, args.cluster, args.client_bootstrap or args.bootstrap, args.kubeconfig
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    registry = kopf.OperatorRegistry()
    register(registry, stand_in)
    asyncio.run(kopf.operator(registry=registry, standalone=True, namespaces=[args.namespace]))


if __name__ == "__main__":
    main()
