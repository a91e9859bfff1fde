"""One agent process: its Kafka loop, HTTP gateway, AgentCard, task store and outgoing calls.

:class:`AgentHost` wires the parts from a :class:`~chorus_api.runtime.RuntimeConfig`
around an a2a-sdk ``AgentExecutor`` (the agent's logic), in this order:

1. replay the task store from the ``.tasks`` topic; tasks a previous run left unfinished
   are marked failed (their requests were accepted, their executions are lost);
2. bind the HTTP socket (its URL goes into the card), build the card;
3. queue the card for ``chorus.agent-cards`` (committed with the first transaction);
4. start the Kafka loop, the gateway and the reply reader for outgoing calls.

:meth:`AgentHost.stop` reverses it: stop polling, let running requests finish (the
grace period), commit, close.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import AgentCard, Role, TaskState
from chorus_api.runtime import RuntimeConfig
from chorus_api.topics import consumer_group, transactional_id

from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.binding.outbox import Outbox
from chorus_agents.binding.server import AcceptingTaskStore, KafkaA2AServer, ServerSettings
from chorus_agents.calls import AgentCaller
from chorus_agents.card import AgentDirectory, build_agent_card, card_record
from chorus_agents.gateway import HttpServer, bind, gateway_app
from chorus_agents.handler import (
    Context,
    DomainEvent,
    Handler,
    HandlerError,
    HandlerExecutor,
    load_handler,
)
from chorus_agents.kafka import client_config
from chorus_agents.tasks import KafkaTaskStore

log = logging.getLogger(__name__)


def instance_name(config: RuntimeConfig) -> str:
    """This replica's name: the configured one, else the host (pod) name."""
    name = config.instance or os.environ.get("HOSTNAME") or socket.gethostname()
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name)[:128] or "agent"


class AgentHost:
    """Runs one agent; an async context manager (``async with AgentHost(...) as host``).

    ``kafka_config`` replaces the librdkafka settings derived from ``config.kafka``
    (tests pass their broker's). ``settings`` overrides the loop's timings.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        logic: AgentExecutor | Handler | None = None,
        *,
        kafka_config: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.identity = config.agent.key
        self._kafka = (
            dict(kafka_config) if kafka_config is not None else client_config(config.kafka)
        )
        self._settings = dict(settings or {})
        self._stop = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.outbox = Outbox()
        self.store = KafkaTaskStore(config.topics.tasks, self.outbox, writer=instance_name(config))
        self.card: AgentCard | None = None
        self.server: KafkaA2AServer | None = None
        self.http: HttpServer | None = None
        self._sock: socket.socket | None = None
        self.handler: DefaultRequestHandler | None = None
        self.connection = KafkaA2AConnection(
            self._kafka, replies=config.topics.replies, sender=self.identity
        )
        self.directory = AgentDirectory(
            self._kafka, config.topics.agent_cards, namespace=config.agent.namespace
        )
        self.agents = AgentCaller(self.connection, self.directory)
        """Calls other agents by name: ``await host.agents.ask("risk-assessor", "...")``."""
        self.context = Context(
            agent=self.identity,
            outbox=self.outbox,
            publish_topics=config.topics.publish,
            agents=self.agents,
        )
        """What a :class:`~chorus_agents.handler.Handler` may do: publish, call agents."""
        if logic is None:
            if config.handler is None:
                raise HandlerError(
                    f"agent {self.identity}: agents without a handler (instructions only) are not "
                    "implemented yet"
                )
            logic = load_handler(config.handler)
        self.handler_logic: Handler | None = logic if isinstance(logic, Handler) else None
        self.executor: AgentExecutor = (
            HandlerExecutor(logic, self.context) if isinstance(logic, Handler) else logic
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
        """The Kafka loop serves and Kafka grants access."""
        return self.server is not None and self.server.ready

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
                max_batch=delivery.max_batch,
                max_in_flight=delivery.max_in_flight,
                max_record_bytes=delivery.max_record_bytes,
                max_attempts=delivery.max_attempts,
                subscribe=config.topics.subscribe,
                **self._settings,
            ),
            self._kafka,
            on_event=self._on_event if config.topics.subscribe else None,
        )
        self.http = HttpServer(gateway_app(self.handler, self.card, ready=lambda: self.ready), sock)
        await self.connection.start()
        self._loop_task = asyncio.create_task(
            self.server.run(self._stop), name=f"agent:{self.identity}"
        )
        started = asyncio.create_task(self.server.wait_started())
        done, _ = await asyncio.wait(
            {self._loop_task, started}, return_when=asyncio.FIRST_COMPLETED
        )
        if self._loop_task in done:
            started.cancel()
            self._loop_task.result()  # raises why the loop did not start
        await self.http.start()
        log.info("agent %s: serving %s and %s", self.identity, config.topics.inbox, self.http_url)

    async def _on_event(self, event: DomainEvent) -> None:
        if self.handler_logic is None:
            raise HandlerError(
                f"agent {self.identity}: subscribes to {event.topic} but its logic is no Handler"
            )
        await self.handler_logic.on_event(event, self.context)

    async def _fail_interrupted(self) -> int:
        tasks = await self.store.unfinished()
        for context, task in tasks:
            task.status.state = TaskState.TASK_STATE_FAILED
            task.status.message.role = Role.ROLE_AGENT
            task.status.message.message_id = f"{task.id}-interrupted"
            task.status.message.parts.add().text = "the agent restarted while the task ran"
            task.status.timestamp.FromDatetime(datetime.now(UTC))
            await self.store.save(task, context)
        return len(tasks)

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
