"""The operator at scale: N Agents (each with 2 Tools and 1 stream) reconciled to Ready.

    .venv/bin/python -m bench.operator                 # 500 Agents
    .venv/bin/python -m bench.operator --agents 50     # a quick look

Runs the real ``chorus-operator`` (a subprocess, as in ``tests/operator``) against the test
kube-apiserver (reused when started by hand, ``python -m tests.services kube up``). Two real
Tools point at one real MCP server run here; this process plays Strimzi, the Flink operator
and the Deployment controller by watching the children and patching their status the way
they would (KafkaTopic/KafkaUser ``Ready`` at each new generation, Deployment
``availableReplicas``, FlinkDeployment ``jobStatus.state=RUNNING``/``lifecycleState=STABLE``).
The two Tools are created and discovered before the timed create phase.

Figures, for the create phase (apply N Agents, wait until all are Ready) and for a no-op
phase (an annotation added to every Agent: every Agent reconciles, nothing should change):

- wall time until all N are Ready (create) or all N reconciled again (no-op);
- apiserver requests per Agent: the delta of ``apiserver_request_total`` (``kubectl get
  --raw /metrics``) minus the requests this process made itself, and the writes among them
  (POST, PUT, PATCH, APPLY, DELETE) by resource;
- the operator's child writes and status writes (its own counters, expected 0 for no-op);
- the operator's peak RSS (``VmHWM`` of its process) and its CPU seconds per phase;
- reconcile p50/p99 from the operator's ``chorus_operator_reconcile_duration_seconds``
  histogram (interpolated within buckets, as Prometheus' ``histogram_quantile``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bench.services import status_kib

console = Console(width=170)
REPO = Path(__file__).resolve().parents[1]
PEERING_CRDS = REPO / "charts" / "chorus-operator" / "charts" / "kopf-peering" / "crds"
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "CREATE", "UPDATE"}
TOOL_NAMES = ("get_quote", "place_order", "get_positions")
DURATION = "chorus_operator_reconcile_duration_seconds"
LARGEST_BUCKET = 30.0
"""The operator's largest finite duration bucket (chorus_operator.metrics), for "> 30000 ms"."""


# --- the apiserver's and the operator's metrics -------------------------------------------


def parse_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of metric ``name`` in Prometheus text format: (labels, value)."""
    found = []
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
            found.append((labels, float(match.group(2))))
    return found


def request_counts(text: str) -> Counter[tuple[str, str]]:
    """apiserver_request_total summed by (verb, resource)."""
    counts: Counter[tuple[str, str]] = Counter()
    for labels, value in parse_samples(text, "apiserver_request_total"):
        counts[(labels.get("verb", ""), labels.get("resource", ""))] += int(value)
    return counts


def histogram(text: str, name: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts (upper bound -> count) of the samples matching ``match``."""
    buckets: dict[float, float] = {}
    for labels, value in parse_samples(text, f"{name}_bucket"):
        if all(labels.get(k) == v for k, v in match.items()):
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """``histogram_quantile`` over the observations made between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank = q * counts[-1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return bound  # beyond the largest bucket: only "more than" is known
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * (
                (rank - lower_count) / width if width else 1
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def total(text: str, name: str, **match: str) -> float:
    return sum(
        value
        for labels, value in parse_samples(text, name)
        if all(labels.get(k) == v for k, v in match.items())
    )


# --- the cluster, through lightkube (one request per call, counted) ------------------------


@dataclass
class Api:
    """The admin client of this process; ``requests`` counts what it sent the apiserver."""

    kube: Any
    requests: int = 0
    client: Any = field(init=False)

    def __post_init__(self) -> None:
        import httpx2
        from lightkube import Client, KubeConfig

        config = KubeConfig.from_file(self.kube.admin_kubeconfig)
        # Listing thousands of children from a busy apiserver takes longer than the default.
        timeout = httpx2.Timeout(120.0, connect=10.0)
        self.client = Client(config=config, field_manager="chorus-bench", timeout=timeout)

    def raw_metrics(self) -> str:
        self.requests += 1
        result = self.kube.kubectl("get", "--raw", "/metrics")
        text: str = result.stdout
        return text

    def apply(self, obj: dict[str, Any]) -> None:
        from chorus_operator import kinds
        from lightkube.types import PatchType

        self.requests += 1
        res = kinds.resource(kinds.find(obj["apiVersion"], obj["kind"]))
        metadata = obj["metadata"]
        self.client.patch(
            res,
            metadata["name"],
            obj,
            namespace=metadata.get("namespace"),
            patch_type=PatchType.APPLY,
            force=True,
        )

    def list(self, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        from chorus_operator import kinds

        self.requests += 1
        res = kinds.resource(kinds.find(api_version, kind))
        return [_as_dict(o) for o in self.client.list(res, namespace=namespace)]

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any]
    ) -> None:
        from chorus_operator import kinds
        from lightkube.types import PatchType

        self.requests += 1
        res = kinds.resource(kinds.find(api_version, kind))
        self.client.patch(
            res.Status, name, {"status": status}, namespace=namespace, patch_type=PatchType.MERGE
        )

    def annotate(self, api_version: str, kind: str, name: str, namespace: str, value: str) -> None:
        from chorus_operator import kinds
        from lightkube.types import PatchType

        self.requests += 1
        res = kinds.resource(kinds.find(api_version, kind))
        patch = {"metadata": {"annotations": {"bench.chorus.dev/touched": value}}}
        self.client.patch(res, name, patch, namespace=namespace, patch_type=PatchType.MERGE)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        result: dict[str, Any] = obj.to_dict()
        return result
    return dict(obj)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for entry in (obj.get("status") or {}).get("conditions") or ():
        if entry.get("type") == type_:
            return dict(entry)
    return None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- the workload --------------------------------------------------------------------------


def tool(name: str, namespace: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"description": f"bench tool {name}", "mcp": {"url": url}},
    }


def agent(index: int, namespace: str, tools: Iterable[str]) -> dict[str, Any]:
    return {
        "apiVersion": "chorus.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": f"agent-{index:04d}", "namespace": namespace},
        "spec": {
            "description": f"bench agent {index}",
            "instructions": "Answer every request with a score.",
            "model": {"provider": "scripted"},
            "subscribe": [{"topic": "bench.signals"}],
            "publish": [{"topic": f"bench.decisions-{index:04d}"}],
            "tools": [{"ref": name, "allow": [TOOL_NAMES[0]]} for name in tools],
            "streams": [{"name": "detector", "job": "chorus_flink.jobs.trading"}],
        },
    }


def ready_status(kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The status ``kind``'s controller would report for ``obj`` now, or None when it has
    reported it already."""
    generation = obj["metadata"].get("generation", 1)
    status = obj.get("status") or {}
    if kind in ("KafkaTopic", "KafkaUser"):
        # Strimzi reconciles every new generation (a KafkaUser's ACLs grow with each peer
        # Agent) and reports it in observedGeneration.
        if condition(obj, "Ready") is not None and status.get("observedGeneration") == generation:
            return None
        ready = {"type": "Ready", "status": "True", "lastTransitionTime": now()}
        return {"observedGeneration": generation, "conditions": [ready]}
    if kind == "Deployment":
        if status.get("observedGeneration") == generation:
            return None
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        available = {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "lastTransitionTime": now(),
            "lastUpdateTime": now(),
        }
        return {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [available],
        }
    if (status.get("jobStatus") or {}).get("state") == "RUNNING":  # FlinkDeployment
        return None
    return {"lifecycleState": "STABLE", "jobStatus": {"state": "RUNNING"}}


CONTROLLED = (
    ("kafka.strimzi.io/v1", "KafkaTopic", "kafka"),
    ("kafka.strimzi.io/v1", "KafkaUser", "kafka"),
    ("apps/v1", "Deployment", "agents"),
    ("flink.apache.org/v1beta1", "FlinkDeployment", "agents"),
)


@dataclass
class Controllers:
    """Strimzi, the Deployment controller and the Flink operator, as far as status goes:
    one thread per kind watches it (as they do) and reports each new object or
    generation ready. Their requests are counted in ``api.requests``."""

    api: Api
    namespace: str
    kafka_namespace: str
    patched: int = 0
    stopping: bool = False
    lock: Any = field(default_factory=lambda: __import__("threading").Lock())

    def start(self) -> None:
        import threading

        for api_version, kind, where in CONTROLLED:
            namespace = self.kafka_namespace if where == "kafka" else self.namespace
            threading.Thread(
                target=self._run, args=(api_version, kind, namespace), daemon=True
            ).start()

    def _count(self, patched: int = 0) -> None:
        with self.lock:
            self.api.requests += 1
            self.patched += patched

    def _run(self, api_version: str, kind: str, namespace: str) -> None:
        from chorus_operator import kinds
        from lightkube import Client, KubeConfig
        from lightkube.types import PatchType

        config = KubeConfig.from_file(self.api.kube.admin_kubeconfig)
        client = Client(config=config, field_manager="chorus-bench")
        res = kinds.resource(kinds.find(api_version, kind))
        while not self.stopping:
            try:
                self._count()
                for _, raw in client.watch(res, namespace=namespace, server_timeout=60):
                    obj = _as_dict(raw)
                    status = ready_status(kind, obj)
                    if status is None or obj["metadata"].get("deletionTimestamp"):
                        continue
                    self._count(1)
                    client.patch(
                        res.Status,
                        obj["metadata"]["name"],
                        {"status": status},
                        namespace=namespace,
                        patch_type=PatchType.MERGE,
                    )
            except Exception as exc:  # a busy apiserver or a deleted object: watch again
                if not self.stopping:
                    console.print(f"[yellow]{kind} controller: {type(exc).__name__}: {exc}")
                    time.sleep(1)


def ready_agents(api: Api, namespace: str) -> int:
    agents = api.list("chorus.dev/v1alpha1", "Agent", namespace)
    return sum(1 for a in agents if (condition(a, "Ready") or {}).get("status") == "True")


def wait(
    progress: Callable[[], int],
    goal: int,
    *,
    what: str,
    timeout: float,
    tick: Callable[[], object],
) -> int:
    """Calls ``tick`` until ``progress()`` reaches ``goal`` or ``timeout`` passes; returns
    the progress reached (a phase that times out is still reported, as unfinished)."""
    from httpx2 import HTTPError
    from lightkube import ApiError

    started = time.monotonic()
    reached, shown = 0, 0.0
    while time.monotonic() - started < timeout:
        try:
            tick()
            reached = progress()
        except (HTTPError, ApiError) as exc:  # a busy apiserver: try again on the next round
            console.print(f"[yellow]{what}: {type(exc).__name__}: {exc}; retrying")
        if reached >= goal:
            return reached
        if time.monotonic() - shown > 30:
            shown = time.monotonic()
            console.print(f"{what}: {reached}/{goal} after {shown - started:.0f}s")
        time.sleep(2.0)
    console.print(f"[red]{what}: only {reached}/{goal} after {timeout:.0f}s")
    return reached


# --- one run -------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    agents: int
    requests: Counter[tuple[str, str]]
    own_requests: int
    child_writes: float
    status_writes: float
    reconciles: float
    p50: float
    p99: float
    cpu: float = 0.0
    """The operator's CPU seconds in the phase (``process_cpu_seconds_total``): steadier
    than the wall time on a shared machine."""
    done: int = 0
    """Agents Ready (create) or Agent reconciles (no-op) when the phase ended."""

    @property
    def operator_requests(self) -> int:
        return sum(self.requests.values()) - self.own_requests

    @property
    def writes(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for (verb, resource), count in self.requests.items():
            if verb in WRITE_VERBS:
                found[resource] += count
        return found


def measure(api: Api, operator: Any, run: Callable[[], float], name: str, agents: int) -> Phase:
    """Runs a phase (``run`` returns its wall time) between two scrapes of both metrics."""
    own = api.requests
    before_api = request_counts(api.raw_metrics())
    before_op = operator_metrics(operator)
    seconds = run()
    after_op = operator_metrics(operator)
    after_api = request_counts(api.raw_metrics())
    delta = Counter({k: after_api[k] - before_api.get(k, 0) for k in after_api})
    bucket_before = histogram(before_op, DURATION, kind="Agent")
    bucket_after = histogram(after_op, DURATION, kind="Agent")
    return Phase(
        name=name,
        seconds=seconds,
        agents=agents,
        requests=+delta,
        own_requests=api.requests - own - 1,  # the first scrape is counted before it
        child_writes=total(after_op, "chorus_operator_writes_total")
        - total(before_op, "chorus_operator_writes_total"),
        status_writes=total(after_op, "chorus_operator_status_writes_total")
        - total(before_op, "chorus_operator_status_writes_total"),
        reconciles=total(after_op, "chorus_operator_reconciles_total", kind="Agent")
        - total(before_op, "chorus_operator_reconciles_total", kind="Agent"),
        p50=quantile(0.5, bucket_before, bucket_after),
        p99=quantile(0.99, bucket_before, bucket_after),
        cpu=total(after_op, "process_cpu_seconds_total")
        - total(before_op, "process_cpu_seconds_total"),
    )


def operator_metrics(operator: Any) -> str:
    import urllib.request

    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


@contextlib.contextmanager
def apiserver(private: bool) -> Iterator[Any]:
    """The test apiserver: a private one (only this benchmark's requests reach it, so the
    request counts are the operator's), or the shared one when ``private`` is off."""
    from tests.services.base import stop_process
    from tests.services.kube import KubeService

    service = KubeService()
    if not private:
        with service.session() as kube:
            yield kube
        return
    process, kube = service._start()
    try:
        yield kube
    finally:
        stop_process(process.pid)


def run_bench(
    agents: int, timeout: float, private: bool, log: Path | None = None
) -> tuple[list[Phase], float]:
    from tests.operator.harness import Cluster, McpServer, Operator, kafka_cluster, unique
    from tests.services.kube import FIELD_MANAGER

    with apiserver(private) as kube, tempfile.TemporaryDirectory() as tmp:
        kube.kubectl(
            "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", str(PEERING_CRDS)
        )
        api, cluster = Api(kube), Cluster(kube)
        namespace = cluster.namespace(unique("bench"))
        kafka_namespace = cluster.namespace(unique("bench-kafka"))
        kafka_cluster(cluster, kafka_namespace)
        server = McpServer(TOOL_NAMES).start()
        # The MCP server's logging setup logs every HTTP request (ours too): keep it quiet.
        logging.disable(logging.INFO)
        operator = Operator(
            kubeconfig=kube.admin_kubeconfig,
            namespaces=(namespace, kafka_namespace),
            kafka_namespace=kafka_namespace,
            log=log or Path(tmp) / "operator.log",
            env={
                "CHORUS_KAFKA_AUTHENTICATION": "scram-sha-512",
                "CHORUS_LOG_LEVEL": "INFO" if log else "WARNING",
                "CHORUS_RECHECK_INTERVAL": "600",
                "CHORUS_DISCOVERY_INTERVAL": "600",
            },
        )
        try:
            operator.start()
            controllers = Controllers(api, namespace, kafka_namespace)
            controllers.start()
            tools = ("bench-exchange", "bench-market")
            for name in tools:
                api.apply(tool(name, namespace, server.url))
            # The Tools are there before the Agents (infrastructure): wait for their
            # discovery, outside the timed phases.
            wait(
                lambda: sum(
                    (condition(t, "Ready") or {}).get("status") == "True"
                    for t in api.list("chorus.dev/v1alpha1", "Tool", namespace)
                ),
                len(tools),
                what="Tools Ready",
                timeout=120,
                tick=lambda: None,
            )

            done: dict[str, int] = {}

            def create() -> float:
                started = time.monotonic()
                for index in range(agents):
                    api.apply(agent(index, namespace, tools))
                done["create"] = wait(
                    lambda: ready_agents(api, namespace),
                    agents,
                    what="Agents Ready",
                    timeout=timeout,
                    tick=lambda: None,
                )
                return time.monotonic() - started

            created = measure(api, operator, create, "create", agents)
            created.done = done["create"]
            phases = [created]
            # Let the follow-up events of the last status patches settle before the no-op.
            time.sleep(10)

            def touch() -> float:
                started = time.monotonic()
                base = total(
                    operator_metrics(operator), "chorus_operator_reconciles_total", kind="Agent"
                )
                for index in range(agents):
                    api.annotate(
                        "chorus.dev/v1alpha1", "Agent", f"agent-{index:04d}", namespace, "1"
                    )
                done["no-op"] = wait(
                    lambda: int(
                        total(
                            operator_metrics(operator),
                            "chorus_operator_reconciles_total",
                            kind="Agent",
                        )
                        - base
                    ),
                    agents,
                    what="Agent reconciles after a no-op change",
                    timeout=timeout,
                    tick=lambda: None,
                )
                seconds = time.monotonic() - started
                time.sleep(5)  # counted: anything the reconciles would write afterwards
                return seconds

            if created.done >= agents:  # a no-op over unfinished Agents would measure nothing
                noop = measure(api, operator, touch, "no-op", agents)
                noop.done = done["no-op"]
                phases.append(noop)
            assert operator.process is not None
            peak_mib = status_kib(operator.process.pid, "VmHWM") / 1024
            controllers.stopping = True
        except BaseException:
            console.print(operator.tail(40))
            raise
        finally:
            operator.stop()
            server.stop()
    return phases, peak_mib


def report(phases: list[Phase], peak_mib: float) -> None:
    table = Table(title="chorus-operator at scale (2 Tools, 1 stream per Agent)")
    for column in (
        "phase",
        "Agents",
        "done",
        "wall s",
        "reconciles",
        "p50 ms",
        "p99 ms",
        "operator CPU s",
        "apiserver req/Agent",
        "writes/Agent",
        "child writes",
        "status writes",
    ):
        table.add_column(column, justify="right")

    def ms(seconds: float) -> str:
        if seconds == float("inf"):
            return f"> {LARGEST_BUCKET * 1000:.0f}"
        return f"{seconds * 1000:.0f}"

    for phase in phases:
        writes = sum(phase.writes.values())
        table.add_row(
            phase.name,
            str(phase.agents),
            str(phase.done),
            f"{phase.seconds:.1f}",
            f"{phase.reconciles:.0f}",
            ms(phase.p50),
            ms(phase.p99),
            f"{phase.cpu:.1f}",
            f"{phase.operator_requests / phase.agents:.1f}",
            f"{writes / phase.agents:.1f}",
            f"{phase.child_writes:.0f}",
            f"{phase.status_writes:.0f}",
        )
    console.print(table)
    console.print(f"operator peak RSS (VmHWM): {peak_mib:.0f} MiB")
    console.print(
        "done: Agents Ready when the create phase ended; Agent reconciles counted in the no-op "
        "phase (it ends when they reach the number of Agents)."
    )
    for phase in phases:
        top = ", ".join(f"{res or '-'} {n}" for res, n in phase.writes.most_common(8))
        console.print(f"{phase.name}: apiserver writes by resource (bench's own included): {top}")
    console.print(
        "apiserver req/Agent excludes the requests this benchmark made itself "
        "(applies, status patches, polls); writes/Agent include them."
    )


app = typer.Typer(add_completion=False)


@app.command()
def main(
    agents: Annotated[int, typer.Option(help="how many Agents")] = 500,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each phase")] = 1800,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write figures here")] = None,
    private: Annotated[
        bool, typer.Option(help="start a private apiserver (clean request counts)")
    ] = True,
    log: Annotated[
        Path | None, typer.Option(help="keep the operator's log here, at INFO (else WARNING)")
    ] = None,
) -> None:
    phases, peak = run_bench(agents, timeout, private, log)
    report(phases, peak)
    if json_out is not None:
        figures = {
            "peak_rss_mib": peak,
            "phases": [
                {
                    "name": p.name,
                    "agents": p.agents,
                    "done": p.done,
                    "seconds": p.seconds,
                    "reconciles": p.reconciles,
                    "p50_s": p.p50,
                    "p99_s": p.p99,
                    "operator_cpu_s": p.cpu,
                    "operator_requests": p.operator_requests,
                    "writes_by_resource": dict(p.writes),
                    "child_writes": p.child_writes,
                    "status_writes": p.status_writes,
                }
                for p in phases
            ],
        }
        json_out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    app()
