"""The Strimzi stand-in on the harness apiserver (with Strimzi's CRDs) and the secured broker:
what it writes is real (a topic with its partitions and config, a SCRAM user who logs in
with the Secret's password and is held to its ACLs), and so is what it takes away."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.cimpl import NewTopic

from tests.operator.harness import wait_for
from tests.services.base import REPO
from tests.services.kafka import KafkaBroker, admin
from tests.services.kube import KubeCluster
from tests.standins.strimzi_state import CLUSTER_LABEL

pytestmark = pytest.mark.integration


@pytest.fixture
def stand_in(
    kube: KubeCluster, kafka_secured: KafkaBroker, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """A namespace and the stand-in watching it for the cluster ``chorus``."""
    namespace = f"kafka-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", namespace)
    log = (tmp_path / "strimzi-stand-in.log").open("wb")
    command = [sys.executable, "-m", "tests.standins.strimzi", "--namespace", namespace]
    command += ["--cluster", "chorus", "--bootstrap", kafka_secured.bootstrap_servers]
    command += ["--username", str(kafka_secured.username)]
    command += ["--password", str(kafka_secured.password)]
    command += ["--client-bootstrap", "10.88.0.1:9094", "--kubeconfig", kube.admin_kubeconfig]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": kube.admin_kubeconfig},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield namespace, "chorus"
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        process.terminate()
        process.wait(timeout=30)
        log.close()


def apply(kube: KubeCluster, document: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(document))


def get(kube: KubeCluster, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    found = kube.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def ready(kube: KubeCluster, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    body = get(kube, kind, name, namespace) or {}
    status = body.get("status") or {}
    current = status.get("observedGeneration") == body["metadata"]["generation"] if body else False
    conditions = {c["type"]: c for c in status.get("conditions") or ()}
    return status if current and conditions.get("Ready", {}).get("status") == "True" else None


def strimzi(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {CLUSTER_LABEL: "chorus"}},
        "spec": spec,
    }


def test_topics_and_users_become_real_on_the_broker_and_go_again(
    kube: KubeCluster, kafka_secured: KafkaBroker, stand_in: tuple[str, str]
) -> None:
    namespace, _ = stand_in
    broker = admin(kafka_secured)
    topic = f"standin.{uuid.uuid4().hex[:6]}"
    other = f"standin.{uuid.uuid4().hex[:6]}"

    # the Kafka: ready, with its listener at the address clients reach
    listeners = [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]
    apply(kube, strimzi("Kafka", "chorus", namespace, {"kafka": {"listeners": listeners}}))
    status = wait_for(lambda: ready(kube, "kafka", "chorus", namespace), what="Kafka Ready")
    assert status["listeners"][0]["bootstrapServers"] == "10.88.0.1:9094"
    assert status["clusterId"] == broker.describe_cluster().result(timeout=10).cluster_id

    # a topic: made with its partitions and config, grown, not shrunk
    spec = {"topicName": topic, "partitions": 2, "replicas": 3, "config": {"retention.ms": 3600000}}
    apply(kube, strimzi("KafkaTopic", "t1", namespace, spec))
    wait_for(lambda: ready(kube, "kafkatopic", "t1", namespace), what="KafkaTopic Ready")
    assert len(broker.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 2
    (described,) = broker.describe_configs([ConfigResource("topic", topic)]).values()
    assert described.result(timeout=10)["retention.ms"].value == "3600000"
    apply(kube, strimzi("KafkaTopic", "t1", namespace, {**spec, "partitions": 3}))
    wait_for(
        lambda: len(broker.list_topics(topic=topic, timeout=10).topics[topic].partitions) == 3,
        what="the topic grown",
    )
    apply(kube, strimzi("KafkaTopic", "t1", namespace, {**spec, "partitions": 1}))
    refused = wait_for(
        lambda: [
            c
            for c in ((get(kube, "kafkatopic", "t1", namespace) or {}).get("status") or {}).get(
                "conditions", ()
            )
            if c["status"] == "False"
        ],
        what="a partition decrease refused",
    )
    assert (
        refused[0]["reason"] == "NotSupported" and "Decreasing partitions" in refused[0]["message"]
    )

    # a user: logs in with its Secret's password, reads what its ACLs allow and nothing else
    acls = [{"resource": {"type": "topic", "name": topic}, "operations": ["Describe", "Read"]}]
    user_spec = {"authentication": {"type": "scram-sha-512"},
                 "authorization": {"type": "simple", "acls": acls}}  # fmt: skip
    apply(kube, strimzi("KafkaUser", "reader", namespace, user_spec))
    status = wait_for(lambda: ready(kube, "kafkauser", "reader", namespace), what="KafkaUser")
    assert (status["username"], status["secret"]) == ("reader", "reader")
    secret = wait_for(lambda: get(kube, "secret", "reader", namespace), what="its Secret")
    password = base64.b64decode(secret["data"]["password"]).decode()
    jaas = base64.b64decode(secret["data"]["sasl.jaas.config"]).decode()
    assert f'username="reader" password="{password}"' in jaas
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "KafkaUser"
    broker.create_topics([NewTopic(other, 1, 1)])
    reader = admin(kafka_secured.as_user("reader", password))
    seen = wait_for(lambda: reader.list_topics(timeout=10).topics, what="the user logs in")
    assert topic in seen and other not in seen  # Describe on its topic only

    # deleting them takes the topic, the credentials and the Secret away
    kube.kubectl("delete", "kafkauser", "reader", "-n", namespace)
    wait_for(lambda: get(kube, "secret", "reader", namespace) is None, what="the Secret gone")

    def refused_login() -> bool:
        try:
            admin(kafka_secured.as_user("reader", password), log_level=0).list_topics(timeout=3)
        except Exception:
            return True
        return False

    wait_for(refused_login, what="the user's login refused")
    kube.kubectl("delete", "kafkatopic", "t1", "-n", namespace)
    wait_for(lambda: topic not in broker.list_topics(timeout=10).topics, what="the topic deleted")
