"""``chorus-operator``: the process. Settings, logs, metrics, health, peering, kopf.

Runs kopf with Chorus' handlers (:mod:`chorus_operator.handlers`) on its own registry:

- peering: replicas share the ClusterKopfPeering (KopfPeering when namespaced) named by
  ``CHORUS_PEERING_NAME``; the one with the highest priority acts, the others stand by
  and take over when its keep-alive lapses. The operator creates the peering object if
  it is missing (the chart ships kopf's peering CRDs). ``CHORUS_STANDALONE`` skips it.
- kopf's progress annotations live under ``chorus.dev`` (without kopf's marker when none
  stays: :mod:`chorus_operator.progress`), its last-handled state in memory
  (:mod:`chorus_operator.diffbase`: no write of the Agent per change); the finalizer is
  ``chorus.dev/cleanup``.
- ``/healthz`` on ``CHORUS_HEALTH_PORT`` (kopf's liveness endpoint), ``/metrics`` on
  ``CHORUS_METRICS_PORT`` (Prometheus), JSON logs (structlog) on stderr.
- SIGTERM and SIGINT stop it gracefully: kopf finishes the handlers in flight.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from collections.abc import Sequence

import httpx2
import kopf
import structlog
from lightkube import ApiError, AsyncClient, KubeConfig

from chorus_operator import kinds, metrics
from chorus_operator.handlers import register
from chorus_operator.model.cleanup import FINALIZER
from chorus_operator.progress import ProgressAnnotations
from chorus_operator.reconcile.common import Context
from chorus_operator.runtime import Runtime
from chorus_operator.settings import Settings, SettingsError, parse_args

PREFIX = "chorus.dev"


def configure_logging(settings: Settings) -> None:
    """Every log record (kopf's too) as one JSON object per line, or readable text."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
    )
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore", "httpx2", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def kopf_settings(settings: Settings, diffbase: kopf.DiffBaseStorage) -> kopf.OperatorSettings:
    """kopf's settings: Chorus' annotation prefix, finalizer, last-handled state, peering."""
    config = kopf.OperatorSettings()
    config.persistence.finalizer = FINALIZER
    config.persistence.progress_storage = ProgressAnnotations(prefix=PREFIX)
    config.persistence.diffbase_storage = diffbase
    config.peering.name = settings.peering_name
    config.peering.priority = settings.peering_priority or random.randint(1, 1_000_000)
    config.peering.standalone = settings.standalone
    config.peering.mandatory = not settings.standalone
    config.peering.stealth = True
    # kopf's own Events ("Handler 'reconcile' succeeded", two or three per change) only
    # for problems; Chorus posts its condition changes itself (chorus_operator.runtime).
    config.posting.level = logging.WARNING
    # Watches end on the server's side every 5 minutes and are re-established; the client
    # gives up only if the server stays silent beyond that.
    config.watching.server_timeout = 300
    config.watching.client_timeout = 330
    config.watching.connect_timeout = 30
    # Handlers are async and wait for a reconcile slot (Runtime); only the login handler
    # and the index functions are sync, and they are cheap.
    config.execution.max_workers = 4
    return config


def kube_config(settings: Settings) -> KubeConfig:
    """The Kubernetes credentials: the kubeconfig setting, ``KUBECONFIG``, or in-cluster."""
    if settings.kubeconfig:
        return KubeConfig.from_file(settings.kubeconfig)
    return KubeConfig.from_env()


async def ensure_peering(client: AsyncClient, settings: Settings) -> None:
    """Creates the peering object if it does not exist (kopf only patches it)."""
    if settings.standalone:
        return
    kind = kinds.CLUSTER_PEERING if settings.clusterwide else kinds.PEERING
    namespaces: list[str | None] = [None] if settings.clusterwide else [*settings.namespaces]
    res = kinds.resource(kind)
    for namespace in namespaces:
        metadata = {"name": settings.peering_name}
        if namespace is not None:
            metadata["namespace"] = namespace
        body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata}
        try:
            await client.create(res(body))
        except ApiError as exc:
            if exc.status.code not in (409, 403):
                raise


async def run(settings: Settings) -> None:
    """Runs the operator until SIGTERM or SIGINT."""
    if settings.kubeconfig:
        # kopf's own login reads KUBECONFIG; lightkube gets the file explicitly.
        os.environ["KUBECONFIG"] = settings.kubeconfig
    timeout = httpx2.Timeout(settings.api_timeout, connect=10.0)
    client = AsyncClient(
        config=kube_config(settings), field_manager="chorus-operator", timeout=timeout
    )
    runtime = Runtime(Context(client=client, settings=settings))
    registry = kopf.OperatorRegistry()
    register(registry, runtime)
    try:
        await ensure_peering(client, settings)
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(settings, runtime.diffbase),
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=settings.standalone,
            liveness_endpoint=(
                f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
            ),
        )
    finally:
        await runtime.close()
        await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    """The ``chorus-operator`` console script."""
    try:
        settings = parse_args(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"chorus-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    metrics.serve(settings.metrics_port)
    structlog.get_logger("chorus_operator").info(
        "starting",
        namespaces=list(settings.namespaces) or "all",
        kafka=f"{settings.kafka_namespace}/{settings.kafka_cluster}",
        peering=None if settings.standalone else settings.peering_name,
    )
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
