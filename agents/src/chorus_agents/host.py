"""One agent process: its Kafka loop, HTTP gateway, AgentCard, task store and outgoing calls.

:class:`AgentHost` wires the parts from a :class:`~chorus_api.runtime.RuntimeConfig`
around an a2a-sdk ``AgentExecutor`` (the agent's logic), in this order:

1. replay the task store from the ``.tasks`` topic; tasks this replica (its instance
   name) left unfinished are marked failed (their requests were accepted, their
   executions are lost); then keep tailing the topic, so every replica sees every
   replica's tasks;
2. bind the HTTP socket (its URL goes into the card), build the card;
3. queue the card for ``chorus.agent-cards`` (committed with the first transaction);
4. start the Kafka loop, the gateway (A2A, ``/metrics``, ``/healthz``, ``/readyz``), the
   reply reader for outgoing calls, the heartbeat and the consumer-lag sampler.

Around the agent's logic: every request and event runs in a span (:mod:`.tracing`) and
an audit scope (:mod:`.audit`), is timed and counted (:mod:`.metrics`); every record the
agent produces carries the trace context of the span that produced it.

:meth:`AgentHost.stop` reverses it: stop polling, let running requests finish (the
grace period), commit, close.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import AgentCard
from chorus_api.runtime import RuntimeConfig
from chorus_api.topics import consumer_group, transactional_id

from chorus_agents.audit import AuditLog
from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.binding.inputs import PipelineSettings
from chorus_agents.binding.requests import AcceptingTaskStore
from chorus_agents.binding.server import KafkaA2AServer, ServerSettings
from chorus_agents.calls import AgentCaller
from chorus_agents.card import AgentDirectory, build_agent_card, card_record
from chorus_agents.durable import DurableRequestHandler
from chorus_agents.gateway import HttpServer, bind, gateway_app
from chorus_agents.handler import (
    Context,
    DomainEvent,
    Handler,
    HandlerError,
    HandlerExecutor,
    ObservedExecutor,
    load_handler,
    observed_event,
)
from chorus_agents.health import Health
from chorus_agents.kafka import SecretReader, client_config
from chorus_agents.lost import GroupMembers, LostTasks, client_id
from chorus_agents.metrics import AgentMetrics, LagSampler
from chorus_agents.models import ModelProvider, provider_for
from chorus_agents.secrets import SecretReader as ApiSecretReader
from chorus_agents.secrets import secret_references
from chorus_agents.tasks import KafkaTaskStore
from chorus_agents.tools import McpToolGateway
from chorus_agents.tracing import TracingOutbox, setup_tracing

log = logging.getLogger(__name__)


def instance_name(config: RuntimeConfig) -> str:
    """This replica's name: the configured one, else the host (pod) name."""
    name = config.instance or os.environ.get("HOSTNAME") or socket.gethostname()
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:128] or "agent"


def kafka_settings(
    config: RuntimeConfig, *, secrets: SecretReader | None = None, **overrides: Any
) -> dict[str, Any]:
    """librdkafka settings for the agent, its credentials read now.

    When ``config.kafka`` names Secrets to read through the Kubernetes API (and no file
    for the same credential), ``secrets`` reads them, by default the pod's in-cluster
    reader; outside a cluster that fails with a
    :class:`~chorus_agents.kafka.CredentialsError` saying so.
    """
    if secrets is None and secret_references(config.kafka):
        secrets = ApiSecretReader.in_cluster(agent=config.agent.key)
    return client_config(config.kafka, secrets=secrets, **overrides)


class AgentHost:
    """Runs one agent; an async context manager (``async with AgentHost(...) as host``).

    ``kafka_config`` replaces the librdkafka settings derived from ``config.kafka``
    (tests pass their broker's). ``settings`` overrides the loop's timings.
    ``lag_interval`` is the seconds between two samples of the consumer lag.
    ``secrets`` reads the Secrets ``config.kafka`` names (default: in the cluster, through
    the pod's ServiceAccount; see :func:`kafka_settings`).
    """

    def __init__(
        self,
        config: RuntimeConfig,
        logic: AgentExecutor | Handler | None = None,
        *,
        kafka_config: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        lag_interval: float = 15.0,
        lost_interval: float = 10.0,
        secrets: SecretReader | None = None,
    ) -> None:
        self.config = config
        self.identity = config.agent.key
        self._kafka = (
            dict(kafka_config)
            if kafka_config is not None
            else kafka_settings(config, secrets=secrets)
        )
        self._settings = dict(settings or {})
        self._stop = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self.outbox = TracingOutbox()
        self.metrics = AgentMetrics()
        self.audit = AuditLog(
            agent=self.identity,
            topic=config.topics.audit,
            outbox=self.outbox,
            observe=self.metrics.observe_audit,
        )
        """The agent's audit sink: ``host.audit.record("decision", ...)``."""
        self.lag = LagSampler(
            self._kafka,
            group_id=consumer_group(config.agent.namespace, config.agent.name),
            topics=[config.topics.inbox, *config.topics.subscribe],
            metrics=self.metrics,
            interval=lag_interval,
        )
        self.health = Health()
        group = consumer_group(config.agent.namespace, config.agent.name)
        self._lost_interval = lost_interval
        self.store = KafkaTaskStore(
            config.topics.tasks,
            self.outbox,
            writer=instance_name(config),
            group=f"{group}.tasks-reader",
        )
        self.card: AgentCard | None = None
        self.server: KafkaA2AServer | None = None
        self.http: HttpServer | None = None
        self._sock: socket.socket | None = None
        self.handler: DefaultRequestHandler | None = None
        self.connection = KafkaA2AConnection(
            self._kafka, replies=config.topics.replies, sender=self.identity
        )
        self.directory = AgentDirectory(
            self._kafka,
            config.topics.agent_cards,
            namespace=config.agent.namespace,
            group=f"{group}.cards-reader",
        )
        self.agents = AgentCaller(self.connection, self.directory, audit=self.audit)
        """Calls other agents by name: ``await host.agents.ask("risk-assessor", "...")``."""
        self.tools = McpToolGateway(config.tools, agent=self.identity, audit=self.audit)
        """The agent's MCP tools (``config.tools``), under the allow-list, timeout, retries,
        breaker and audit; sessions open at the first call, :meth:`stop` closes them."""
        self.model: ModelProvider | None = (
            provider_for(config.model) if config.model is not None else None
        )
        """The spec's model, built once: a code-defined handler's ``ctx.model``."""
        self.context = Context(
            agent=self.identity,
            outbox=self.outbox,
            publish_topics=config.topics.publish,
            agents=self.agents,
            audit=self.audit,
            tools=self.tools,
            model=self.model,
        )
        """What a :class:`~chorus_agents.handler.Handler` may do: publish, call agents,
        tools (``ctx.tools``) and the spec's model (``ctx.model``)."""
        if logic is None:
            if config.handler is None:
                # instructions only: the model-and-tools loop, its records in the audit log
                from chorus_agents.instructed import InstructedAgent

                logic = InstructedAgent.from_config(config, audit=self.audit, model=self.model)
            else:
                logic = load_handler(config.handler)
        self.handler_logic: Handler | None = logic if isinstance(logic, Handler) else None
        self.executor: AgentExecutor = ObservedExecutor(
            HandlerExecutor(logic, self.context) if isinstance(logic, Handler) else logic,
            audit=self.audit,
            metrics=self.metrics,
            timeout=config.delivery.handler_timeout_seconds,
        )
        self.health.liveness["kafka-loop"] = self._loop_alive
        self.health.readiness.update(
            {
                "kafka-loop": self._loop_serving,
                "kafka-access": self._access,
                "kafka-reachable": self._reachable,
                "assignment": self._assigned,
            }
        )

    @property
    def http_url(self) -> str:
        """The gateway's JSON-RPC URL as published in the card."""
        assert self._sock is not None, "not started"
        if self.config.http.public_url:
            return self.config.http.public_url
        host = self.config.http.host
        if host in {"0.0.0.0", "::", ""}:
            host = socket.gethostname()
        port = self._sock.getsockname()[1]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    @property
    def ready(self) -> bool:
        """Every readiness check passes (see :mod:`.health`)."""
        return all(result == "ok" for result in self.health.ready().values())

    # --- health checks: None when fine, else why not ---------------------------------------

    def _loop_alive(self) -> str | None:
        task = self._loop_task
        if task is not None and task.done() and not self._stop.is_set():
            error = None if task.cancelled() else task.exception()
            return f"the Kafka loop ended: {error!r}" if error else "the Kafka loop ended"
        return None

    def _loop_serving(self) -> str | None:
        if self.server is None or not self.server.ready:
            return "the Kafka loop does not serve"
        return None

    def _access(self) -> str | None:
        stats = self.server.stats if self.server is not None else None
        if stats is not None and stats.authorization_failed:
            return f"Kafka refuses access: {stats.last_kafka_error or 'authorization failed'}"
        if self.lag.authorization_error is not None:
            return f"Kafka refuses access: {self.lag.authorization_error}"
        return None

    def _reachable(self) -> str | None:
        if self.lag.last_ok is None:
            return (
                f"Kafka not reached yet{': ' + self.lag.last_error if self.lag.last_error else ''}"
            )
        age = time.monotonic() - self.lag.last_ok
        if age > 3 * self.lag.interval + self.lag.timeout:
            return f"Kafka not reached for {age:.0f}s: {self.lag.last_error}"
        return None

    def _assigned(self) -> str | None:
        assigned = getattr(self.server, "assigned", None)
        if assigned is not None and not assigned:
            return "the consumer has no partitions assigned (yet)"
        return None

    async def __aenter__(self) -> AgentHost:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Starts every part; returns once the agent serves Kafka and HTTP."""
        config = self.config
        setup_tracing(self.identity)
        self.metrics.watch_loop(lambda: self.server.stats if self.server is not None else None)
        loaded = await self.store.load(self._kafka)
        failed = await self._fail_interrupted()
        log.info("agent %s: %d task(s) loaded, %d interrupted", self.identity, loaded, failed)

        self._sock = sock = bind(config.http.host, config.http.port)
        self.card = build_agent_card(
            namespace=config.agent.namespace,
            name=config.agent.name,
            inbox=config.topics.inbox,
            http_url=self.http_url,
            description=config.agent.description,
            version=config.agent.version,
            skills=config.skills,
        )
        self.handler = DefaultRequestHandler(
            self.executor, AcceptingTaskStore(self.store), self.card
        )
        self.outbox.append(
            card_record(
                self.card,
                topic=config.topics.agent_cards,
                namespace=config.agent.namespace,
                agent=config.agent.name,
            )
        )
        instance = instance_name(config)
        delivery = config.delivery
        self.server = KafkaA2AServer(
            self.handler,
            self.outbox,
            ServerSettings(
                inbox=config.topics.inbox,
                agent=self.identity,
                group_id=consumer_group(config.agent.namespace, config.agent.name),
                transactional_id=(
                    transactional_id(config.agent.namespace, config.agent.name, instance)
                    if delivery.guarantee == "exactly-once"
                    else None
                ),
                dead_letter=config.topics.dead_letter if delivery.dead_letter else None,
                pipeline=PipelineSettings(
                    max_batch=delivery.max_batch,
                    max_in_flight=delivery.max_in_flight,
                    commit_interval=delivery.commit_interval_ms / 1000,
                    handler_timeout=delivery.handler_timeout_seconds,
                ),
                max_record_bytes=delivery.max_record_bytes,
                max_attempts=delivery.max_attempts,
                subscribe=config.topics.subscribe,
                **self._settings,
            ),
            # the group's members name their replica: see chorus_agents.lost
            {**self._kafka, "client.id": client_id(instance)},
            on_event=self._on_event if config.topics.subscribe else None,
            card=self.card,
            tasks=self.store,
            executions=self.executor if isinstance(self.executor, ObservedExecutor) else None,
        )
        server = self.server
        self.lost = LostTasks(
            self.store,
            members=GroupMembers(self._kafka, server.settings.group_id),
            owns=lambda source: source in server.pipeline.partitions,
            interval=self._lost_interval,
        )
        """Fails the tasks of replicas that are gone (:mod:`.lost`)."""
        self.http = HttpServer(
            gateway_app(
                DurableRequestHandler(
                    self.handler,
                    self.outbox,
                    check=self.server.pipeline.check,
                    committed=self.server.pipeline.committed,
                ),
                self.card,
                routes=[self.metrics.route(), *self.health.routes()],
            ),
            sock,
        )
        await self.connection.start()
        tail = asyncio.create_task(self.store.follow(self._stop), name="task-store-tail")
        self._loop_task = asyncio.create_task(
            self.server.run(self._stop), name=f"agent:{self.identity}"
        )
        started = asyncio.create_task(self.server.wait_started())
        done, _ = await asyncio.wait(
            {self._loop_task, started}, return_when=asyncio.FIRST_COMPLETED
        )
        if self._loop_task in done:
            started.cancel()
            tail.cancel()
            self._loop_task.result()  # raises why the loop did not start
        self._background = [
            tail,
            asyncio.create_task(self.health.beat(self._stop), name="heartbeat"),
            asyncio.create_task(self.lag.run(self._stop), name="consumer-lag"),
            asyncio.create_task(self.lost.run(self._stop), name="lost-tasks"),
        ]
        await self.lag.sample()
        await self.http.start()
        log.info("agent %s: serving %s and %s", self.identity, config.topics.inbox, self.http_url)

    async def _on_event(self, event: DomainEvent) -> None:
        if self.handler_logic is None:
            raise HandlerError(
                f"agent {self.identity}: subscribes to {event.topic} but its logic is no Handler"
            )
        logic = self.handler_logic
        await observed_event(
            event,
            lambda e: logic.on_event(e, self.context),
            audit=self.audit,
            metrics=self.metrics,
        )

    async def _fail_interrupted(self) -> int:
        """Fails the tasks this replica (its instance name) was running when it stopped:
        their executions are gone with the process that ran them."""
        mine = [task for task in self.store.running() if task.writer == self.store.writer]
        for task in mine:
            await self.store.fail(
                task.task_id, "restarted", "the agent restarted while the task ran"
            )
        return len(mine)

    async def wait(self) -> None:
        """Returns when the Kafka loop ends (after :meth:`stop`, or when it failed)."""
        if self._loop_task is not None:
            await self._loop_task

    async def stop(self) -> None:
        """Stops taking input, lets running requests finish, commits, closes everything."""
        self._stop.set()
        if self.http is not None:
            await self.http.stop()
        if self._loop_task is not None:
            try:
                await self._loop_task
            finally:
                if self.handler is not None:
                    await self.handler.aclose()
                await self.connection.close()
                await asyncio.gather(*self._background, return_exceptions=True)
                close = getattr(self.handler_logic, "aclose", None)
                if close is not None:  # an instructed agent's MCP sessions
                    await close()
                await self.tools.aclose()
                close_model = getattr(self.model, "aclose", None)
                if close_model is not None:  # the SDK's HTTP client
                    await close_model()
