"""Status of Agents and Tools, derived from their children's own status. Pure functions.

Each child kind reports readiness its own way; :func:`child_health` reads them all into one
:class:`Health` (Deployment availability; the ``Ready`` condition of KafkaTopic and
KafkaUser; FlinkDeployment ``status.jobStatus.state`` and ``status.lifecycleState``). The
Agent's conditions group its children by aspect (TopicsReady, AccessReady, WorkloadReady,
StreamsReady), ToolsResolved says whether the model could resolve the spec, and Ready is
their conjunction. ``lastTransitionTime`` moves only when a condition's status changes, so
recomputing an unchanged status yields an equal one and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
PENDING, READY, DEGRADED, FAILED = "Pending", "Ready", "Degraded", "Failed"

AGENT_ASPECTS: Mapping[str, tuple[str, ...]] = {
    "TopicsReady": ("KafkaTopic",),
    "AccessReady": ("KafkaUser",),
    "WorkloadReady": ("Deployment",),
    "StreamsReady": ("FlinkDeployment",),
}
"""Which child kinds each Agent condition summarises."""

AGENT_CONDITIONS = ("Ready", "ToolsResolved", *AGENT_ASPECTS)
TOOL_CONDITIONS = ("Ready", "ServerReady", "Discovered")


@dataclass(frozen=True)
class Health:
    """One child's readiness: ``ready`` None while its controller has not reported yet."""

    ready: bool | None
    reason: str
    message: str
    failed: bool = False
    """Whether the child reports a failure that will not heal by waiting."""


@dataclass(frozen=True)
class Condition:
    """A condition before its time stamps are merged in."""

    type: str
    status: str
    reason: str
    message: str


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for entry in (obj.get("status") or {}).get("conditions") or ():
        if entry.get("type") == type_:
            return dict(entry)
    return None


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind', 'object')} {(obj.get('metadata') or {}).get('name', '?')}"


def _strimzi_health(obj: Mapping[str, Any]) -> Health:
    name = _name(obj)
    ready = _condition(obj, "Ready")
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if ready is None:
        return Health(None, "Pending", f"{name}: not reconciled by Strimzi yet")
    if generation is not None and observed is not None and observed < generation:
        if obj.get("kind") == "KafkaUser" and ready.get("status") == TRUE:
            # The user exists and works with its previous ACLs while Strimzi applies the
            # new ones (a subscription or publish topic added): going Pending meanwhile
            # would tell the user nothing useful.
            return Health(
                True, "Updating", f"{name}: ready, Strimzi is applying generation {generation}"
            )
        return Health(None, "Pending", f"{name}: Strimzi has not seen generation {generation}")
    if ready.get("status") == TRUE:
        return Health(True, "Ready", f"{name} is ready")
    reason = ready.get("reason") or "NotReady"
    message = ready.get("message") or "not ready"
    return Health(False, str(reason), f"{name}: {message}")


def _deployment_health(obj: Mapping[str, Any]) -> Health:
    name = _name(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if not status or observed is None:
        return Health(None, "Pending", f"{name}: not rolled out yet")
    if generation is not None and observed < generation:
        return Health(None, "RollingOut", f"{name}: rolling out generation {generation}")
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(False, "ProgressDeadlineExceeded", f"{name}: rollout stalled", failed=True)
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas", 0) or 0
    updated = status.get("updatedReplicas", 0) or 0
    if wanted == 0:
        return Health(True, "ScaledToZero", f"{name} is scaled to zero")
    if updated < wanted:
        return Health(False, "RollingOut", f"{name}: {updated}/{wanted} replicas updated")
    if available < 1:
        return Health(False, "Unavailable", f"{name}: no replica available")
    return Health(True, "Available", f"{name}: {available}/{wanted} replicas available")


_FLINK_READY_LIFECYCLE = {"STABLE", "DEPLOYED"}


def _flink_health(obj: Mapping[str, Any]) -> Health:
    name = _name(obj)
    status = obj.get("status") or {}
    job = (status.get("jobStatus") or {}).get("state")
    lifecycle = status.get("lifecycleState")
    if status.get("error") and lifecycle in {"FAILED", None}:
        return Health(False, "DeploymentFailed", f"{name}: {status['error']}", failed=True)
    if job is None and lifecycle is None:
        return Health(None, "Pending", f"{name}: not deployed by the Flink operator yet")
    if job == "FAILED" or lifecycle == "FAILED":
        return Health(False, "JobFailed", f"{name}: job {job or lifecycle}", failed=True)
    if job == "RUNNING" and lifecycle in _FLINK_READY_LIFECYCLE:
        return Health(True, "Running", f"{name}: job running")
    return Health(False, "JobNotRunning", f"{name}: job {job or 'unknown'}, {lifecycle}")


def child_health(obj: Mapping[str, Any] | None, kind: str, name: str) -> Health:
    """The readiness of one child as its controller reports it; ``obj`` None: it is missing."""
    if obj is None:
        return Health(False, "Missing", f"{kind} {name} does not exist")
    obj = {**obj, "kind": kind}
    if kind in {"KafkaTopic", "KafkaUser"}:
        return _strimzi_health(obj)
    if kind == "Deployment":
        return _deployment_health(obj)
    if kind == "FlinkDeployment":
        return _flink_health(obj)
    return Health(True, "Exists", f"{kind} {name} exists")


def aspect_condition(
    type_: str, healths: Sequence[Health], *, none_reason: str, none_message: str
) -> Condition:
    """One aspect condition over the children it covers: True when every one is ready."""
    if not healths:
        return Condition(type_, TRUE, none_reason, none_message)
    failing = [h for h in healths if h.ready is not True]
    if not failing:
        return Condition(type_, TRUE, "Ready", f"{len(healths)} ready")
    first = next((h for h in failing if h.failed), failing[0])
    status = UNKNOWN if all(h.ready is None for h in failing) else FALSE
    more = f" (and {len(failing) - 1} more not ready)" if len(failing) > 1 else ""
    return Condition(type_, status, first.reason, first.message + more)


KUBELET_FAILURES = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "StartError",
    }
)
"""Why the kubelet cannot keep a container running: a waiting (or last terminated) reason."""


def pod_trouble(pods: Iterable[Mapping[str, Any]]) -> Health | None:
    """The kubelet's reason a pod of the workload is not running, if any (pure): the first
    container waiting for a reason of :data:`KUBELET_FAILURES`, with what its last run
    ended in, or a pod the scheduler cannot place."""
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        for container in status.get("containerStatuses") or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason not in KUBELET_FAILURES:
                continue
            message = f"pod {name}, container {container.get('name')}: {reason}"
            if waiting.get("message"):
                message += f": {waiting['message']}"
            ended = (container.get("lastState") or {}).get("terminated") or {}
            if ended:
                message += f" (last run: {ended.get('reason')}, exit code {ended.get('exitCode')})"
            return Health(False, str(reason), message)
        for condition in status.get("conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                why = condition.get("reason") or "Unschedulable"
                return Health(False, str(why), f"pod {name}: {condition.get('message', why)}")
    return None


_NONE = {
    "TopicsReady": ("NoTopics", "the agent has no topics"),
    "AccessReady": ("NoKafkaUser", "the Kafka cluster needs no user (no authentication)"),
    "WorkloadReady": ("NoWorkload", "no workload"),
    "StreamsReady": ("NoStreams", "the agent has no streams"),
}


def agent_conditions(
    children: Iterable[tuple[str, str, Mapping[str, Any] | None]],
    pods: Iterable[Mapping[str, Any]] = (),
) -> list[Condition]:
    """TopicsReady, AccessReady, WorkloadReady, StreamsReady from ``(kind, name, live)``;
    a workload that is not available says the kubelet's reason when its ``pods`` give one."""
    by_kind: dict[str, list[Health]] = {}
    for kind, name, live in children:
        by_kind.setdefault(kind, []).append(child_health(live, kind, name))
    trouble = pod_trouble(pods)
    result = []
    for type_, child_kinds in AGENT_ASPECTS.items():
        healths = [h for kind in child_kinds for h in by_kind.get(kind, [])]
        if type_ == "WorkloadReady" and trouble is not None and not all(h.ready for h in healths):
            healths = [trouble]
        reason, message = _NONE[type_]
        result.append(aspect_condition(type_, healths, none_reason=reason, none_message=message))
    return result


def blocked_conditions(condition_type: str, reason: str, message: str) -> list[Condition]:
    """The conditions of an Agent whose spec the model refused: no children were made."""
    result = [Condition(condition_type, FALSE, reason, message)]
    for type_ in ("ToolsResolved", *AGENT_ASPECTS):
        if type_ != condition_type:
            result.append(Condition(type_, UNKNOWN, "Blocked", f"blocked: {message}"))
    return result


def ready_condition(conditions: Sequence[Condition], what: str) -> Condition:
    """Ready: True when every other condition is True, else the first that is not."""
    for condition in conditions:
        if condition.type != "Ready" and condition.status != TRUE:
            return Condition(
                "Ready", FALSE, condition.reason, f"{condition.type}: {condition.message}"
            )
    return Condition("Ready", TRUE, "Ready", f"{what} is ready")


def with_ready(conditions: Sequence[Condition], what: str) -> list[Condition]:
    """``conditions`` led by Ready: derived by :func:`ready_condition` unless already there."""
    if any(c.type == "Ready" for c in conditions):
        ready = next(c for c in conditions if c.type == "Ready")
        return [ready, *(c for c in conditions if c.type != "Ready")]
    return [ready_condition(conditions, what), *conditions]


def phase(conditions: Sequence[Condition], *, failed: bool, previous: str | None) -> str:
    """The phase: Ready; Failed (spec refused, or a child failed for good); Degraded (it was
    running, or its workload still is, but something is not ready); Pending otherwise."""
    by_type = {c.type: c for c in conditions}
    if failed:
        return FAILED
    if by_type.get("Ready") and by_type["Ready"].status == TRUE:
        return READY
    workload = by_type.get("WorkloadReady")
    if previous in {READY, DEGRADED} or (workload is not None and workload.status == TRUE):
        return DEGRADED
    return PENDING


def merge_conditions(
    new: Sequence[Condition],
    old: Sequence[Mapping[str, Any]],
    *,
    generation: int | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Conditions as written to status: ``lastTransitionTime`` kept unless status changed."""
    previous = {c.get("type"): c for c in old}
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = []
    for condition in new:
        before = previous.get(condition.type)
        since = stamp
        if before is not None and before.get("status") == condition.status:
            since = before.get("lastTransitionTime") or stamp
        entry: dict[str, Any] = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message[:32768],
            "lastTransitionTime": since,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        result.append(entry)
    return result


@dataclass(frozen=True)
class Transition:
    """A condition whose status changed (for a Kubernetes Event)."""

    type: str
    old: str | None
    new: str
    reason: str
    message: str

    @property
    def bad(self) -> bool:
        """Whether it went from True to something else, or appeared as False."""
        return self.new == FALSE or (self.old == TRUE and self.new != TRUE)


def transitions(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]
) -> list[Transition]:
    """Conditions whose status differs between ``old`` and ``new``."""
    before = {c.get("type"): c.get("status") for c in old}
    return [
        Transition(c["type"], before.get(c["type"]), c["status"], c["reason"], c["message"])
        for c in new
        if before.get(c["type"]) != c["status"]
    ]


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` over ``old`` changes anything (only keys in ``new`` count)."""
    old = old or {}
    return any(old.get(key) != value for key, value in new.items())
