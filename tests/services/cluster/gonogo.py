"""The go/no-go of the real-cluster tier: can a pod here do what every Chorus workload does?

It starts the cluster (:func:`~tests.services.cluster.node.running_cluster`) and a Kafka
broker that also listens on the bridge, puts a selector-less ``kafka`` Service (and its
EndpointSlice) in front of that listener, and runs the probe pod, which checks that

- ``dns``: a Service name resolves through cluster DNS (CoreDNS, behind kube-proxy);
- ``api``: ``https://kubernetes.default.svc`` answers its ServiceAccount token;
- ``kafka``: the broker answers through the Service, and the address it advertises too.

The pod spec is plain: no hostNetwork, no hostAliases, no address given but Service names.
Then everything is torn down, and the table says what worked, how long each step took, and
whether the host is as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tests.services.base import ServiceError, wait_until
from tests.services.cluster import CLUSTER_DOMAIN, NODE_IP, build
from tests.services.cluster.node import Cluster, Record, running_cluster
from tests.services.kafka import KafkaBroker, KafkaService

NAMESPACE = "chorus-gonogo"
KAFKA_SERVICE_PORT = 9092
PROBE_CHECKS = ("dns", "api", "kafka")
Say = Callable[[str], None]


class PodKafkaService(KafkaService):
    """The harness broker, also listening (and advertising) on the bridge, for pods."""

    name = "kafka-pods"
    pod_host = NODE_IP


@dataclass(frozen=True)
class Row:
    step: str
    ok: bool | None
    """None: a measurement, not a check."""
    seconds: float | None
    detail: str


def kafka_service(broker: KafkaBroker) -> list[dict[str, Any]]:
    """A Service without a selector, and the EndpointSlice that points it at the broker's
    pod listener: how a cluster names something that runs outside it."""
    if broker.pod_bootstrap_servers is None:
        raise ServiceError("gonogo: the broker has no pod listener")
    host, port = broker.pod_bootstrap_servers.rsplit(":", 1)
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kafka", "namespace": NAMESPACE},
            "spec": {
                "ports": [
                    {
                        "name": "kafka",
                        "port": KAFKA_SERVICE_PORT,
                        "targetPort": int(port),
                        "protocol": "TCP",
                    }
                ]
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kafka-harness",
                "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": "kafka"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "kafka", "port": int(port), "protocol": "TCP"}],
        },
    ]


def probe_pod(image: str, *, name: str = "probe", dns: str | None = None) -> dict[str, Any]:
    """The probe pod; ``dns`` is the name it resolves (default: the ``kafka`` Service's)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": [
                        f"--dns={dns or f'kafka.{NAMESPACE}.svc.{CLUSTER_DOMAIN}'}",
                        "--api=https://kubernetes.default.svc",
                        f"--kafka=kafka:{KAFKA_SERVICE_PORT}",
                    ],
                    "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}},
                    "securityContext": {
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def run_probe(
    cluster: Cluster, broker: KafkaBroker, say: Say, *, name: str = "probe", dns: str | None = None
) -> tuple[list[Row], str]:
    """Runs a probe pod (``name``, resolving ``dns``: see :func:`probe_pod`) to its end;
    its rows, and its log."""
    api = cluster.api
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    api.apply(kafka_service(broker))
    # The ServiceAccount admission refuses a pod until the controller made "default".
    wait_until(
        lambda: api.kubectl("-n", NAMESPACE, "get", "sa", "default", check=False).returncode == 0,
        what=f"gonogo: ServiceAccount {NAMESPACE}/default",
        timeout=60,
    )
    started = time.monotonic()
    api.apply(probe_pod(cluster.images["chorus-probe"], name=name, dns=dns))
    say("  probe pod created; waiting for it to finish")

    def phase() -> str:
        return api.kubectl(
            "-n", NAMESPACE, "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False
        ).stdout.strip()

    wait_until(lambda: phase() in {"Succeeded", "Failed"}, what="gonogo: probe pod", timeout=240)
    seconds = time.monotonic() - started
    logs = api.kubectl("-n", NAMESPACE, "logs", name, check=False)
    text = logs.stdout if logs.returncode == 0 else _log_file(cluster.layout.pod_logs, name)
    rows = [Row("probe pod ran (created to finished)", phase() == "Succeeded", seconds, phase())]
    if logs.returncode != 0:
        rows.append(Row("kubectl logs (apiserver to kubelet)", False, None, logs.stderr.strip()))
    results = _results(text)
    for check in PROBE_CHECKS:
        found = results.get(check)
        if found is None:
            rows.append(Row(check, False, None, "the probe printed no result"))
        else:
            rows.append(Row(check, bool(found["ok"]), found["seconds"], found["detail"]))
    return rows, text


def _results(log: str) -> dict[str, dict[str, Any]]:
    for line in log.splitlines():
        if line.startswith("RESULTS "):
            return {r["check"]: r for r in json.loads(line.removeprefix("RESULTS "))}
    return {}


def _log_file(pod_logs: Path, name: str = "probe") -> str:
    """The probe's output read from the kubelet's log files (CRI format: time, stream, tag,
    line), when ``kubectl logs`` could not get it."""
    lines = []
    for path in sorted(pod_logs.glob(f"{NAMESPACE}_{name}_*/probe/*.log")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(" ", 3)
            lines.append(parts[3] if len(parts) == 4 else line)
    return "\n".join(lines)


def gonogo(console: Console) -> bool:
    """Runs the whole go/no-go; prints progress and the table; True for a go."""

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    rows: list[Row] = []
    record = Record()
    probe_log = ""
    started = time.monotonic()
    try:
        report = build.install(say)
        rows.append(Row("build (binaries, images)", True, report.seconds or None, report.summary()))
        with running_cluster(say, record) as cluster:
            rows += [Row(step, True, s, "") for step, s in record.steps.items()]
            kafka_started = time.monotonic()
            with PodKafkaService().session() as broker:
                rows.append(
                    Row(
                        "kafka broker (pod listener)",
                        True,
                        time.monotonic() - kafka_started,
                        f"{broker.pod_bootstrap_servers} (and {broker.bootstrap_servers})",
                    )
                )
                probe_rows, probe_log = run_probe(cluster, broker, say)
                rows += probe_rows
    except ServiceError as exc:
        rows += [Row(s, True, t, "") for s, t in record.steps.items() if s not in _names(rows)]
        rows.append(Row("error", False, None, str(exc)))
    if record.teardown is not None:
        left = record.teardown.left
        rows.append(
            Row(
                "teardown: host as before",
                not left,
                record.teardown.seconds,
                "; ".join(left) or f"{len(record.teardown.done)} changes undone",
            )
        )
    go = all(row.ok is not False for row in rows) and all(
        any(row.step == check and row.ok for row in rows) for check in PROBE_CHECKS
    )
    if probe_log:
        console.rule("probe log")
        say(probe_log.rstrip())
    if record.teardown is not None:
        console.rule("teardown: what was undone")
        for line in record.teardown.done:
            say(f"  {line}")
    console.print(_table(rows, time.monotonic() - started))
    verdict = "[bold green]GO[/]" if go else "[bold red]NO-GO[/]"
    can = "can" if go else "cannot"
    console.print(
        f"{verdict}: a pod on this machine {can} use cluster DNS, the apiserver with its "
        "ServiceAccount token and the harness Kafka broker"
    )
    return go


def _names(rows: list[Row]) -> set[str]:
    return {row.step for row in rows}


def _table(rows: list[Row], total: float) -> Table:
    table = Table("step / check", "result", "seconds", "detail", title="cluster go/no-go")
    marks = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: ""}
    for row in rows:
        seconds = f"{row.seconds:.1f}" if row.seconds is not None else ""
        table.add_row(escape(row.step), marks[row.ok], seconds, escape(row.detail))
    table.add_row("total", "", f"{total:.1f}", "")
    return table
