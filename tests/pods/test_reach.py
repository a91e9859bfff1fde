"""The go/no-go, as the cluster tier's first test: a pod on the real one-node cluster does what
every Chorus workload does. It resolves a Service name through cluster DNS (CoreDNS behind
kube-proxy), reaches the apiserver through the ``kubernetes`` Service with its ServiceAccount
token, and reaches the harness broker through a Service (and at the address the broker
advertises). The pod spec gives no address but Service names: no hostNetwork, no hostAliases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.services.cluster.gonogo import PROBE_CHECKS, probe_pod, run_probe
from tests.services.kafka import KafkaBroker

pytestmark = pytest.mark.cluster


def test_a_pod_resolves_a_service_reaches_the_apiserver_and_the_broker(
    cluster: Any, pod_kafka: KafkaBroker
) -> None:
    spec = probe_pod(cluster.images["chorus-probe"])["spec"]
    assert not {"hostNetwork", "hostAliases", "dnsConfig"} & set(spec)
    rows, log = run_probe(cluster, pod_kafka, print)
    failed = [row for row in rows if row.ok is False]
    assert failed == [], f"{failed}\nthe probe's log:\n{log}"
    assert {row.step for row in rows} >= {"probe pod ran (created to finished)", *PROBE_CHECKS}


def test_the_probe_fails_for_a_name_nobody_serves(cluster: Any, pod_kafka: KafkaBroker) -> None:
    """The control: the same pod asked to resolve a Service that does not exist reports the
    DNS check failed (and the others still pass), so the test above can fail."""
    rows, log = run_probe(
        cluster, pod_kafka, print, name="probe-control", dns="nobody.chorus-gonogo.svc"
    )
    by_step = {row.step: row.ok for row in rows}
    assert by_step["dns"] is False, log
    assert (by_step["api"], by_step["kafka"]) == (True, True), log
