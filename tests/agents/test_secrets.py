"""The agent reads its Kafka credentials from Secrets in the Kafka namespace, through the API.

Against the real kube-apiserver: a Secret in a ``kafka-<random>`` namespace, read by a
user (the restricted client certificate, or a ServiceAccount's token as in a pod) that a
Role grants ``get`` on exactly that Secret, as the operator grants it. End to end: an
agent whose SCRAM password exists only in such a Secret logs in to the secured broker
with exactly its KafkaUser's ACLs and serves.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from a2a.types.a2a_pb2 import SendMessageRequest, TaskState
from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.host import AgentHost
from chorus_agents.kafka import CredentialsError, client_config, helper_group
from chorus_agents.secrets import SecretAccessError, SecretReader, secret_references
from chorus_api.runtime import KafkaConnection, SecretKeySelector
from chorus_api.topics import AGENT_CARDS_TOPIC, replies_topic
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from tests.agents.conftest import (
    FAST,
    ScriptExecutor,
    agent_config,
    answer_text,
    create_agent_topics,
    create_missing_topics,
    user_text,
)
from tests.agents.test_least_privilege import agent_user
from tests.services.base import wait_until
from tests.services.kafka import KafkaBroker, read_topic
from tests.services.kube import KubeCluster

RESTRICTED = "chorus-restricted"
PASSWORD = "s3cret-Value-9f2c"


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _kubeconfig(path: str) -> tuple[str, bytes, Mapping[str, Any]]:
    """The server, the CA (PEM) and the user entry of a kubeconfig with embedded data."""
    document = yaml.safe_load(Path(path).read_text())
    cluster = document["clusters"][0]["cluster"]
    return (
        cluster["server"],
        base64.b64decode(cluster["certificate-authority-data"]),
        document["users"][0]["user"],
    )


def restricted_reader(kube: KubeCluster, folder: Path, *, agent: str) -> SecretReader:
    """A reader authenticated as ``chorus-restricted`` (its client certificate)."""
    server, ca, user = _kubeconfig(kube.restricted_kubeconfig)
    files = {
        "ca.crt": ca,
        "tls.crt": base64.b64decode(user["client-certificate-data"]),
        "tls.key": base64.b64decode(user["client-key-data"]),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return SecretReader(
        server,
        ca_file=folder / "ca.crt",
        cert_file=folder / "tls.crt",
        key_file=folder / "tls.key",
        agent=agent,
    )


def kafka_namespace(kube: KubeCluster, secrets: Mapping[str, Mapping[str, str]]) -> str:
    """A new namespace ``kafka-<random>`` holding ``secrets`` (name -> key -> value)."""
    namespace = f"kafka-{_suffix()}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "type": "Opaque",
                "data": {key: _b64(value) for key, value in data.items()},
            }
            for name, data in secrets.items()
        ]
    )
    return namespace


def grant_get(
    kube: KubeCluster, namespace: str, names: list[str], subject: Mapping[str, str]
) -> None:
    """A Role with ``get`` on exactly the Secrets ``names``, bound to ``subject``, as the
    operator's agent access Role."""
    role = f"read-{_suffix()}"
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": role, "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "resourceNames": names,
                        "verbs": ["get"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": role, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [dict(subject)],
            },
        ]
    )


def readable(reader: SecretReader, namespace: str, name: str, key: str) -> None:
    """Waits until the apiserver's RBAC cache lets ``reader`` read the Secret."""

    def ok() -> bool:
        reader.read(namespace, name, key)
        return True

    wait_until(ok, what=f"secret {namespace}/{name} readable", timeout=30)


def service_account(kube: KubeCluster, namespace: str, name: str, folder: Path) -> dict[str, str]:
    """A ServiceAccount ``namespace/name`` (the namespace is created) with its token and the
    cluster CA written into ``folder`` as a pod has them, and the environment of a pod."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
    )
    token = kube.kubectl("create", "token", name, "-n", namespace).stdout.strip()
    server, ca, _ = _kubeconfig(kube.admin_kubeconfig)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(token + "\n")
    (folder / "ca.crt").write_bytes(ca)
    url = urlsplit(server)
    return {"KUBERNETES_SERVICE_HOST": str(url.hostname), "KUBERNETES_SERVICE_PORT": str(url.port)}


# --- without services ------------------------------------------------------------------------


@pytest.mark.unit
def test_the_repr_shows_neither_token_nor_values() -> None:
    reader = SecretReader("https://127.0.0.1:6443", token="tok-Very-Secret-1", agent="t/a")
    assert "tok-Very-Secret-1" not in repr(reader)
    assert "t/a" in repr(reader) and "bearer token" in repr(reader)


@pytest.mark.unit
def test_outside_a_cluster_the_in_cluster_reader_says_so(tmp_path: Path) -> None:
    with pytest.raises(SecretAccessError, match=r"^agent t/a: .*not in a cluster"):
        SecretReader.in_cluster(agent="t/a", environ={}, service_account=tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(SecretAccessError, match=r"no ServiceAccount token at"):
        SecretReader.in_cluster(agent="t/a", environ=env, service_account=tmp_path)
    (tmp_path / "token").write_text("x")
    reader = SecretReader.in_cluster(agent="t/a", environ=env, service_account=tmp_path)
    assert reader.server == "https://10.0.0.1:443"


@pytest.mark.unit
def test_only_references_without_a_file_need_a_reader() -> None:
    ref = SecretKeySelector(namespace="kafka", name="t.a", key="password")
    both = KafkaConnection.model_validate(
        {
            "bootstrapServers": "k:9092",
            "securityProtocol": "SASL_PLAINTEXT",
            "saslMechanism": "SCRAM-SHA-512",
            "username": "t.a",
            "passwordFile": "/run/password",
            "passwordSecret": ref.model_dump(by_alias=True),
        }
    )
    assert secret_references(both) == {}
    only_secret = both.model_copy(update={"password_file": None})
    assert secret_references(only_secret) == {"password": ref}


@pytest.mark.unit
def test_an_agent_host_outside_a_cluster_does_not_start_on_secret_references(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = agent_config(
        "trading",
        "risk",
        SimpleNamespace(bootstrap_servers="127.0.0.1:9"),
        kafka={
            "securityProtocol": "SASL_PLAINTEXT",
            "saslMechanism": "SCRAM-SHA-512",
            "username": "trading.risk",
            "passwordSecret": {"namespace": "kafka", "name": "trading.risk", "key": "password"},
        },
    )
    with pytest.raises(CredentialsError, match=r"^agent trading/risk: .*not in a cluster"):
        AgentHost(config, ScriptExecutor())


# --- against the kube-apiserver --------------------------------------------------------------


@pytest.mark.integration
def test_the_restricted_user_reads_exactly_the_secret_it_was_granted(
    kube: KubeCluster, tmp_path: Path
) -> None:
    other_value = "other-Value-77aa"
    ns = kafka_namespace(
        kube,
        {
            "trading.risk": {"password": PASSWORD, "sasl.jaas.config": "x"},
            "trading.desk": {"password": other_value},
        },
    )
    grant_get(kube, ns, ["trading.risk", "gone"], {"kind": "User", "name": RESTRICTED})
    reader = restricted_reader(kube, tmp_path, agent="trading/risk")
    readable(reader, ns, "trading.risk", "password")

    selector = SecretKeySelector(namespace=ns, name="trading.risk", key="password")
    assert reader(selector) == PASSWORD

    with pytest.raises(SecretAccessError) as refused:
        reader.read(ns, "trading.desk", "password")
    assert refused.value.status == 403
    assert str(refused.value).startswith(
        f"agent trading/risk: may not read secret {ns}/trading.desk (RBAC)"
    )
    assert other_value not in str(refused.value)

    with pytest.raises(SecretAccessError, match=rf"secret {ns}/gone does not exist") as missing:
        reader.read(ns, "gone", "password")
    assert missing.value.status == 404

    with pytest.raises(SecretAccessError) as no_key:
        reader.read(ns, "trading.risk", "passwd")
    message = str(no_key.value)
    assert f"secret {ns}/trading.risk has no key 'passwd'" in message
    assert "password" in message and PASSWORD not in message


@pytest.mark.integration
def test_a_pod_reader_uses_its_service_account_token_and_rereads_it(
    kube: KubeCluster, tmp_path: Path
) -> None:
    agent_ns = f"lp{_suffix()}"
    ns = kafka_namespace(kube, {f"{agent_ns}.risk": {"password": PASSWORD}})
    pod = tmp_path / "serviceaccount"
    env = service_account(kube, agent_ns, "risk", pod)
    grant_get(
        kube,
        ns,
        [f"{agent_ns}.risk"],
        {"kind": "ServiceAccount", "name": "risk", "namespace": agent_ns},
    )
    token = (pod / "token").read_text()
    (pod / "token").write_text("not-a-token")
    reader = SecretReader.in_cluster(agent=f"{agent_ns}/risk", environ=env, service_account=pod)
    assert "not-a-token" not in repr(reader)

    with pytest.raises(SecretAccessError, match="refuses the credentials") as refused:
        reader.read(ns, f"{agent_ns}.risk", "password")
    assert refused.value.status == 401

    (pod / "token").write_text(token)  # rotated: the same reader picks it up
    readable(reader, ns, f"{agent_ns}.risk", "password")
    assert reader.read(ns, f"{agent_ns}.risk", "password") == PASSWORD


# --- end to end: Kafka credentials from a Secret ---------------------------------------------


@pytest.fixture
async def hosts() -> AsyncIterator[list[AgentHost]]:
    started: list[AgentHost] = []
    yield started
    for host in reversed(started):
        await host.stop()


def _group_describable(user: KafkaBroker, group: str, topic: str) -> bool:
    """Whether ``user`` may look up ``group``'s offsets of ``topic`` (Describe on the group)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    client = AdminClient(user.client_config())
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
    future = client.list_consumer_group_offsets([request], request_timeout=20)[group]
    try:
        future.result(timeout=30)
        return True
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return False
        raise


@pytest.mark.integration
@pytest.mark.anyio
async def test_an_agent_logs_in_with_the_password_of_a_secret_in_the_kafka_namespace(
    kube: KubeCluster, kafka_secured: KafkaBroker, hosts: list[AgentHost], tmp_path: Path
) -> None:
    agent_ns = f"lp{_suffix()}"
    user = await asyncio.to_thread(agent_user, kafka_secured, agent_ns, "risk")
    assert user.username is not None and user.password is not None
    secret = f"{agent_ns}.risk"
    ns = await asyncio.to_thread(kafka_namespace, kube, {secret: {"password": user.password}})
    pod = tmp_path / "serviceaccount"
    env = await asyncio.to_thread(service_account, kube, agent_ns, "risk", pod)
    await asyncio.to_thread(
        grant_get,
        kube,
        ns,
        [secret],
        {"kind": "ServiceAccount", "name": "risk", "namespace": agent_ns},
    )
    reader = SecretReader.in_cluster(agent=f"{agent_ns}/risk", environ=env, service_account=pod)
    await asyncio.to_thread(readable, reader, ns, secret, "password")

    config = agent_config(
        agent_ns,
        "risk",
        kafka_secured,
        kafka={
            "securityProtocol": "SASL_PLAINTEXT",
            "saslMechanism": "SCRAM-SHA-512",
            "username": user.username,
            "passwordSecret": {"namespace": ns, "name": secret, "key": "password"},
        },
    )
    await asyncio.to_thread(
        create_missing_topics,
        kafka_secured,
        [AGENT_CARDS_TOPIC],
        config={"cleanup.policy": "compact"},
    )
    await asyncio.to_thread(create_agent_topics, kafka_secured, config)
    console_replies = replies_topic(agent_ns, "console")
    await asyncio.to_thread(create_missing_topics, kafka_secured, [console_replies])

    # The client settings hold the password read from the Secret, and it logs in.
    settings = client_config(config.kafka, secrets=reader)
    assert settings["sasl.password"] == user.password
    producer = Producer(settings)
    producer.produce(config.topics.audit, key=b"probe", value=b"{}")
    assert producer.flush(20) == 0
    audit = await asyncio.to_thread(read_topic, kafka_secured, config.topics.audit)
    assert [r.key() for r in audit] == [b"probe"]

    # The whole agent, with no kafka_config: the host reads the Secret at construction.
    host = AgentHost(config, ScriptExecutor(), settings=FAST, secrets=reader)
    await host.start()
    hosts.append(host)
    console = KafkaA2AConnection(
        kafka_secured.client_config(), replies=console_replies, sender=f"{agent_ns}/console"
    )
    await console.start()
    try:
        assert host.card is not None
        to_risk = console.transport(host.card, host.card.supported_interfaces[0].url)
        answer = await to_risk.send_message(SendMessageRequest(message=user_text("echo hi")))
    finally:
        await console.close()
    assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(answer.task) == "echo: hi"
    assert host.ready

    # The replay and the registry read under groups the KafkaUser's ACLs cover; a
    # helper group outside the agent's prefix is refused.
    assert host.store.group is not None and host.directory.group is not None
    assert await asyncio.to_thread(_group_describable, user, host.store.group, config.topics.tasks)
    assert await asyncio.to_thread(
        _group_describable, user, host.directory.group, AGENT_CARDS_TOPIC
    )
    outside = helper_group(AGENT_CARDS_TOPIC, "reader")
    assert not await asyncio.to_thread(_group_describable, user, outside, AGENT_CARDS_TOPIC)
