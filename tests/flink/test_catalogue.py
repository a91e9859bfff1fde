"""The operator's job catalogue (``chorus_api.streams.JOBS``) and ``flink/`` agree, and every
job's FlinkDeployment is accepted by a real kube-apiserver with the Flink operator's CRDs.

The job modules import pyflink, so they are inspected in flink/'s own environment (the
``flink`` fixture's Python), not imported here.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from typing import Any

import pytest
from chorus_api.agent import Stream, UpgradeMode
from chorus_api.streams import (
    JOBS,
    RESERVED_PARAMETERS,
    FlinkRuntime,
    flink_deployment,
    resolve_stream,
)

from tests.services.flink import FLINK, FlinkEnv
from tests.services.kube import KubeCluster

pytestmark = pytest.mark.integration

INSPECT = """
import importlib, json, sys
from chorus_flink.config import RESERVED
found = {"reserved": sorted(RESERVED), "jobs": {}}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        found["jobs"][name] = {"error": str(exc)}
        continue
    parameters = getattr(module, "PARAMETERS", None)
    found["jobs"][name] = {
        "build": callable(getattr(module, "build", None)),
        "parameters": None if parameters is None else dict(parameters),
    }
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def modules(flink: FlinkEnv) -> dict[str, Any]:
    result = subprocess.run(
        [flink.python, "-c", INSPECT, *sorted(JOBS)],
        capture_output=True,
        text=True,
        cwd=FLINK,
        check=True,
        timeout=120,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_runner_reserves_the_same_keys_as_the_operator(modules: dict[str, Any]) -> None:
    assert set(modules["reserved"]) == RESERVED_PARAMETERS


@pytest.mark.parametrize("module", sorted(JOBS))
def test_every_catalogue_job_has_a_module_with_build_and_the_same_parameters(
    modules: dict[str, Any], module: str
) -> None:
    found = modules["jobs"][module]
    assert "error" not in found, f"{module}: {found.get('error')}"
    assert found["build"], f"{module}: no build(t_env, config)"
    declared = {p.name: p.default for p in JOBS[module].parameters}
    if found["parameters"] is not None:  # PARAMETERS: what the job reads, with its defaults
        assert found["parameters"] == declared


def test_jobs_that_declare_parameters_include_trading_and_maintenance(
    modules: dict[str, Any],
) -> None:
    for module in ("chorus_flink.jobs.trading", "chorus_flink.jobs.maintenance"):
        assert modules["jobs"][module]["parameters"] is not None, module


def test_apiserver_accepts_the_flink_deployment_of_every_job(kube: KubeCluster) -> None:
    namespace = f"flink-{secrets.token_hex(3)}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    runtime = FlinkRuntime(
        image="ghcr.io/chorus-dev/chorus-flink:0.1.0",
        bootstrap_servers="chorus-kafka-bootstrap.kafka:9093",
        kafka_properties={"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"},
        env=[
            {
                "name": "KAFKA_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "flink-user", "key": "password"}},
            }
        ],
    )
    try:
        objects = []
        for n, module in enumerate(sorted(JOBS)):
            mode = list(UpgradeMode)[n % len(UpgradeMode)]
            required = {
                p.name: f"topic-{p.name}" for p in JOBS[module].parameters if p.default is None
            }
            stream = Stream.model_validate(
                {
                    "name": f"job-{n}",
                    "job": module,
                    "parallelism": 2,
                    "upgradeMode": mode.value,
                    "config": required,
                }
            )
            objects.append(
                flink_deployment(
                    resolve_stream(stream),
                    runtime,
                    name=f"stream-{n}",
                    namespace=namespace,
                    labels={"app.kubernetes.io/part-of": "chorus"},
                )
            )
        result = kube.apply(objects, dry_run=True)
        accepted = [line for line in result.stdout.splitlines() if "server dry run" in line]
        assert len(accepted) == len(objects), result.stdout
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
