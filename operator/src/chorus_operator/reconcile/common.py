"""What reconciling an Agent and a Tool share: the context, applying children, writing status.

The reconcile layer reads the cluster, hands frozen inputs to the model, applies what the
model built and derives status; it never imports kopf. Its outcome is a :class:`Outcome`
the handler layer turns into kopf's errors and Kubernetes Events.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from chorus_operator import apply, kinds, metrics
from chorus_operator.cache import Expiring, Store
from chorus_operator.model.errors import DependencyNotReady, ModelError, SpecInvalid
from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.kafka import SHARED_LABEL
from chorus_operator.settings import Settings
from chorus_operator.status import Transition, status_changed, transitions

KAFKA_TTL = 10.0
"""Seconds a Ready Strimzi ``Kafka`` is trusted without reading it again (it is not
watched); one that is missing or not ready is read on every reconcile."""
CRD_TTL = 30.0
"""Seconds the answer to "is KEDA installed?" is kept."""


@dataclass(frozen=True)
class Context:
    """What every reconcile needs: the API client, the settings, and what was seen."""

    client: AsyncClient
    settings: Settings
    pruned: dict[Any, frozenset[apply.ObjectRef]] = field(default_factory=dict)
    """Per owner, the children kept by its last prune: the same set again needs no prune
    (twelve list calls saved per reconcile). Empty after a restart: one prune each."""
    store: Store = field(default_factory=Store)
    """The newest version seen of every watched object (children, Agents, Tools)."""
    kafka: Expiring[dict[str, Any]] = field(default_factory=lambda: Expiring(KAFKA_TTL))
    crds: Expiring[bool] = field(default_factory=lambda: Expiring(CRD_TTL))
    sharers: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    """Per shared topic ``(namespace, name)``, the Agents whose status depends on it (it
    carries no owner label to find them by)."""

    @property
    def model_settings(self) -> OperatorSettings:
        return self.settings.to_model()


@dataclass(frozen=True)
class Outcome:
    """What one reconcile found: the model's refusal if any, and the condition changes."""

    error: ModelError | None
    transitions: tuple[Transition, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    written: int = 0
    """Children created, updated or deleted (0 on a no-op)."""


Live = tuple[str, str, dict[str, Any] | None]
"""A child as ``(kind, name, live object or None)``."""


def is_shared(manifest: Mapping[str, Any]) -> bool:
    """Whether ``manifest`` is a shared topic: created by whoever needs it first, then left
    as it is (see :data:`chorus_operator.model.kafka.SHARED_LABEL`)."""
    return SHARED_LABEL in ((manifest.get("metadata") or {}).get("labels") or {})


async def live_child(
    ctx: Context, child: Mapping[str, Any], *, new_owner: bool
) -> dict[str, Any] | None:
    """The live object of ``child``: from the store, else read; None when it does not
    exist, and without a request for a brand-new owner (its children cannot exist yet)."""
    ref = apply.ObjectRef.of(child)
    seen = ctx.store.get(ref.api_version, ref.kind, ref.namespace, ref.name)
    if seen is not None or new_owner:
        return seen
    obj = await apply.get(ctx.client, ref)
    if obj is not None:
        ctx.store.put(ref.api_version, ref.kind, obj)
    return obj


async def apply_children(
    ctx: Context, children: Sequence[Mapping[str, Any]], *, new_owner: bool = False
) -> tuple[list[Live], int]:
    """Applies ``children`` in order; returns each as now live, and how many were written.

    Children are read from :attr:`Context.store` (a GET only on a miss; none at all for a
    ``new_owner``, one never reconciled before, whose children cannot exist yet). A shared
    topic that exists is left as it is.
    """
    live: list[Live] = []
    written = 0
    for child in children:
        current = await live_child(ctx, child, new_owner=new_owner)
        if current is not None and is_shared(child) and is_shared(current):
            live.append((child["kind"], child["metadata"]["name"], current))
            continue
        try:
            if current is None and is_shared(child):
                # Another owner may have made it meanwhile: create, or leave it be.
                outcome, made = await apply.create(ctx.client, child)
                if made is None:
                    made = await apply.get(ctx.client, apply.ObjectRef.of(child))
                obj = made or {}
            else:
                # live_child has looked already (or knows there is nothing to see).
                outcome, obj = await apply.apply(ctx.client, child, live=current, read=False)
        except ApiError as exc:
            raise _refusal(child, exc) from exc
        if outcome is not apply.Outcome.UNCHANGED:
            written += 1
            metrics.WRITES.labels(child["kind"], outcome.value).inc()
            ctx.store.put(child["apiVersion"], child["kind"], obj)
        live.append((child["kind"], child["metadata"]["name"], obj))
    return live, written


_ASPECT_OF_KIND = {
    "KafkaTopic": "TopicsReady",
    "KafkaUser": "AccessReady",
    "Role": "AccessReady",
    "RoleBinding": "AccessReady",
    "FlinkDeployment": "StreamsReady",
}


def _refusal(child: Mapping[str, Any], exc: ApiError) -> Exception:
    """The apiserver's refusal of a child as the condition to report, or ``exc`` itself.

    A missing namespace (the Kafka namespace, say) is waited for; a child the apiserver
    finds invalid (its message names the field) is reported on the Agent or Tool.
    """
    ref = apply.ObjectRef.of(child)
    aspect = _ASPECT_OF_KIND.get(ref.kind, "WorkloadReady")
    message = f"{ref}: {exc.status.message}"
    if exc.status.code == 404 and ref.namespace is not None:
        return DependencyNotReady(aspect, "NamespaceNotFound", message)
    if exc.status.code == 422:
        return SpecInvalid(aspect, "ChildRejected", message)
    return exc


async def prune_children(
    ctx: Context,
    *,
    owner_namespace: str,
    selectors: Sequence[tuple[str, Mapping[str, str]]],
    children: Sequence[Mapping[str, Any]],
    new_owner: bool = False,
) -> int:
    """Deletes children found by ``(namespace, labels)`` selectors that are not desired.

    A ``new_owner`` (never reconciled, spec never changed) has nothing to prune: every
    child it ever had was made from this same spec.
    """
    keep = frozenset(apply.ObjectRef.of(child) for child in children)
    key = (owner_namespace, tuple((ns, tuple(sorted(labels.items()))) for ns, labels in selectors))
    if ctx.pruned.get(key) == keep:
        return 0
    if new_owner:
        ctx.pruned[key] = keep
        return 0
    deleted = 0
    for namespace, labels in selectors:
        only = kinds.child_kinds_in(
            namespace, owner_namespace=owner_namespace, kafka_namespace=ctx.settings.kafka_namespace
        )
        pruned = await apply.prune(
            ctx.client, namespaces=[namespace], labels=labels, keep=keep, child_kinds=only
        )
        for ref in pruned:
            metrics.WRITES.labels(ref.kind, "deleted").inc()
            gone = {"metadata": {"namespace": ref.namespace, "name": ref.name}}
            ctx.store.forget(ref.api_version, ref.kind, gone)
            deleted += 1
    ctx.pruned[key] = keep
    return deleted


async def write_status(
    ctx: Context,
    kind: kinds.Kind,
    namespace: str,
    name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
) -> tuple[Transition, ...]:
    """Patches ``status`` with ``new`` when it differs from ``old``; returns condition changes.

    An object deleted meanwhile is not an error: there is nothing left to report on.
    """
    if not status_changed(old, new):
        return ()
    res = kinds.resource(kind)
    try:
        written = await ctx.client.patch(
            res.Status,
            name,
            {"status": dict(new)},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    except ApiError as exc:
        if exc.status.code == 404:
            return ()
        raise
    metrics.STATUS_WRITES.labels(kind.kind).inc()
    # The next reconcile starts from this version, not from an event that predates it.
    ctx.store.put(kind.api_version, kind.kind, apply.as_dict(written))
    return tuple(transitions((old or {}).get("conditions") or (), new.get("conditions") or ()))


def new_owner(body: Mapping[str, Any], built: str) -> bool:
    """Whether the Agent or Tool ``body`` never had children made and its spec never
    changed: none can exist yet (nothing to read, nothing to prune). ``built`` is the
    status field only a successful build writes (``topics``, ``endpoint``)."""
    meta = body.get("metadata") or {}
    return meta.get("generation") == 1 and built not in (body.get("status") or {})


async def secret_exists(ctx: Context, namespace: str, name: str) -> bool:
    """Whether Secret ``namespace/name`` exists."""
    ref = apply.ObjectRef("v1", "Secret", namespace, name)
    return await apply.get(ctx.client, ref) is not None


async def secret_value(ctx: Context, namespace: str, name: str, key: str) -> str | None:
    """The decoded value of ``key`` in Secret ``namespace/name``; None when either is missing."""
    secret = await apply.get(ctx.client, apply.ObjectRef("v1", "Secret", namespace, name))
    if secret is None:
        return None
    data = (secret.get("data") or {}).get(key)
    if data is None:
        text = (secret.get("stringData") or {}).get(key)
        return text if isinstance(text, str) else None
    return base64.b64decode(data).decode()


def condition_of(obj: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The status condition ``type_`` of ``obj``, if any."""
    for entry in ((obj or {}).get("status") or {}).get("conditions") or ():
        if entry.get("type") == type_:
            return dict(entry)
    return None
