"""Running the real ``chorus-operator`` against the test apiserver, and playing the other
controllers' part (Strimzi, the Flink operator, the Deployment controller) by patching
status the way they would.

Each test gets its own agent namespace and Kafka namespace (so a Kafka CR, peering object
and operator of one test never meet another's) and an operator process watching only those.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from tests.services.base import REPO, free_port
from tests.services.kube import KubeCluster

OPERATOR = REPO / ".venv" / "bin" / "chorus-operator"
PEERING_CRDS = REPO / "charts/chorus-operator/charts/kopf-peering/crds/kopf-peering.yaml"
"""kopf's peering CRDs, as the chart ships them (kopf itself does not ship them as a file)."""


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 90.0) -> Any:
    """Polls ``check`` until it returns something truthy; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:
            error = exc
        time.sleep(0.3)
    raise AssertionError(f"{what}: not true after {timeout:.0f}s (last: {last!r}, error: {error})")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Cluster:
    """kubectl helpers over the shared apiserver (admin)."""

    kube: KubeCluster

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kube.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def list(self, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kube.kubectl(*args).stdout)["items"]
        return items

    def names(self, kind: str, namespace: str, selector: str | None = None) -> set[str]:
        return {o["metadata"]["name"] for o in self.list(kind, namespace, selector)}

    def apply(self, manifest: Mapping[str, Any] | str, namespace: str | None = None) -> None:
        doc = yaml.safe_load(manifest) if isinstance(manifest, str) else dict(manifest)
        if namespace:
            doc.setdefault("metadata", {})["namespace"] = namespace
        self.kube.apply(doc)

    def delete(self, kind: str, name: str, namespace: str, *, wait: bool = False) -> None:
        self.kube.kubectl(
            "delete", kind, name, "-n", namespace, f"--wait={str(wait).lower()}", check=False
        )

    def patch_status(self, kind: str, name: str, namespace: str, status: Mapping[str, Any]) -> None:
        """Sets ``status`` as the kind's controller would (status subresource, merge patch)."""
        self.kube.kubectl(
            "patch", kind, name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": dict(status)}),
        )  # fmt: skip

    def patch(self, kind: str, name: str, namespace: str, patch: Mapping[str, Any]) -> None:
        self.kube.kubectl(
            "patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(dict(patch))
        )

    def namespace(self, name: str) -> str:
        self.kube.kubectl("create", "namespace", name)
        return name

    def condition(self, kind: str, name: str, namespace: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(kind, name, namespace) or {}
        for entry in (obj.get("status") or {}).get("conditions") or ():
            if entry.get("type") == type_:
                return dict(entry)
        return None


# --- playing the other controllers ---------------------------------------------------------


def strimzi_ready(cluster: Cluster, kind: str, name: str, namespace: str) -> None:
    obj = cluster.get(kind, name, namespace) or {}
    generation = (obj.get("metadata") or {}).get("generation", 1)
    cluster.patch_status(
        kind,
        name,
        namespace,
        {
            "observedGeneration": generation,
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": _now()},
            ],
        },
    )


def deployment_available(cluster: Cluster, name: str, namespace: str) -> None:
    obj = cluster.get("deployment", name, namespace) or {}
    generation = obj["metadata"]["generation"]
    replicas = obj["spec"].get("replicas", 1)
    cluster.patch_status(
        "deployment",
        name,
        namespace,
        {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "lastTransitionTime": _now(),
                    "lastUpdateTime": _now(),
                }
            ],
        },
    )


def flink_running(cluster: Cluster, name: str, namespace: str, state: str = "RUNNING") -> None:
    cluster.patch_status(
        "flinkdeployment",
        name,
        namespace,
        {"lifecycleState": "STABLE" if state == "RUNNING" else "FAILED",
         "jobStatus": {"state": state}},
    )  # fmt: skip


def kafka_cluster(cluster: Cluster, namespace: str, name: str = "chorus") -> None:
    """A Strimzi Kafka CR that reports Ready (as the Strimzi operator would)."""
    cluster.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "Kafka",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "kafka": {
                    "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]
                }
            },
        }
    )
    strimzi_ready(cluster, "kafka", name, namespace)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- the operator process ------------------------------------------------------------------


@dataclass
class Operator:
    """One ``chorus-operator`` process; :meth:`stop` sends SIGTERM (graceful)."""

    kubeconfig: str
    namespaces: tuple[str, ...]
    kafka_namespace: str
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> Operator:
        env = {
            **os.environ,
            "CHORUS_KUBECONFIG": self.kubeconfig,
            "CHORUS_NAMESPACES": ",".join(self.namespaces),
            "CHORUS_KAFKA_NAMESPACE": self.kafka_namespace,
            "CHORUS_METRICS_PORT": str(self.metrics_port),
            "CHORUS_HEALTH_PORT": str(self.health_port),
            "CHORUS_RECHECK_INTERVAL": "600",  # convergence must be event-driven
            "CHORUS_DISCOVERY_INTERVAL": "5",
            "CHORUS_LOG_LEVEL": "INFO",
            **self.env,
        }
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(OPERATOR)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            wait_for(self.healthy, what=f"operator /healthz ({self.log})", timeout=60)
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited {self.process.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{key}="{val}"' in head for key, val in labels.items()):
                total += float(value)
        return total

    def tail(self, lines: int = 80) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)


# --- an MCP server ---------------------------------------------------------------------------


@dataclass
class McpServer:
    """A real MCP server (mcp 2.x MCPServer, streamable HTTP) on a loopback port."""

    tools: tuple[str, ...]
    token: str | None = None
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> McpServer:
        from mcp.server.mcpserver import MCPServer

        server: MCPServer[Any] = MCPServer("test-tools")
        for tool in self.tools:
            server.add_tool(_echo, name=tool, description=f"the {tool} tool")
        app = server.streamable_http_app(host="127.0.0.1")
        if self.token is not None:
            app = _require_token(app, self.token)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for(lambda: self._server is not None and self._server.started, what="MCP server")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def _echo(text: str = "") -> str:
    return text


def _require_token(app: Any, token: str) -> Any:
    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded
