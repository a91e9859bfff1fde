"""What the agent runtime's tests share: a scripted agent, agents on the real broker, a caller.

:class:`ScriptExecutor` is real agent logic (an a2a-sdk ``AgentExecutor``) whose
behaviour the first word of the message picks, so one agent serves every scenario:

- ``echo <text>``: a task: submitted, working, one artifact ``echo: <text>``, completed;
- ``stream <n>``: a task whose artifact arrives in ``n`` chunks, then completed;
- ``wait``: a task that works until it is cancelled;
- ``message <text>``: no task, one message ``said: <text>``;
- ``fail``: the executor raises;
- ``ask <agent> <text>``: asks another agent by name, answers with its artifact text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from a2a.helpers import get_artifact_text, new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Message, Role, Task, TaskState
from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.host import AgentHost
from chorus_api.runtime import RuntimeConfig, parse_runtime_config
from chorus_api.topics import AGENT_CARDS_TOPIC, replies_topic

from tests.services.kafka import KafkaBroker, create_topics


class ScriptExecutor(AgentExecutor):
    """Test agent logic; see the module docstring. ``host`` is set for ``ask``."""

    def __init__(self) -> None:
        self.host: AgentHost | None = None
        self.cancelled: list[str] = []

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        verb, _, rest = context.get_user_input().partition(" ")
        assert context.task_id is not None and context.context_id is not None
        if verb == "message":
            reply = new_text_message(f"said: {rest}", context_id=context.context_id)
            await event_queue.enqueue_event(reply)
            return
        if context.current_task is None:
            history = [context.message] if context.message is not None else []
            task = new_task(
                context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED, history=history
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        if verb == "echo":
            await updater.add_artifact([new_text_part(f"echo: {rest}")], name="echo")
            await updater.complete()
        elif verb == "stream":
            count = int(rest)
            for i in range(count):
                await updater.add_artifact(
                    [new_text_part(f"chunk {i};")],
                    artifact_id="chunks",
                    append=i > 0,
                    last_chunk=i == count - 1,
                )
                await asyncio.sleep(0.02)
            await updater.complete()
        elif verb == "wait":
            await asyncio.Event().wait()
        elif verb == "fail":
            raise RuntimeError("asked to fail")
        elif verb == "ask":
            assert self.host is not None
            agent, _, question = rest.partition(" ")
            answer = await self.host.agents.ask(agent, question)
            text = answer_text(answer)
            await updater.add_artifact([new_text_part(f"{agent} says {text}")], name="relay")
            await updater.complete()
        else:
            await updater.failed(
                new_text_message(f"unknown verb {verb!r}", context_id=context.context_id)
            )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None
        self.cancelled.append(context.task_id)
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def answer_text(answer: Task | Message) -> str:
    """The text of a message, or of a task's artifacts."""
    if isinstance(answer, Message):
        return "".join(part.text for part in answer.parts)
    return "".join(get_artifact_text(artifact, "") for artifact in answer.artifacts)


def user_text(text: str, **kwargs: Any) -> Message:
    return new_text_message(text, role=Role.ROLE_USER, **kwargs)


def namespace() -> str:
    """A namespace no earlier run used: a broker started by hand outlives test runs."""
    return f"t{uuid.uuid4().hex[:8]}"


def agent_config(ns: str, name: str, broker: Any, **overrides: Any) -> RuntimeConfig:
    document: dict[str, Any] = {
        "agent": {"namespace": ns, "name": name, "description": f"test agent {name}"},
        "kafka": {"bootstrapServers": broker.bootstrap_servers},
        "handler": "tests.agents.conftest:ScriptExecutor",
        "http": {"host": "127.0.0.1", "port": 0},
        "skills": [{"id": "script", "name": "Scripted", "tags": ["test"]}],
        "instance": "replica-0",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return parse_runtime_config(document)


def create_missing_topics(broker: Any, names: list[str], **kwargs: Any) -> None:
    """Creates those of ``names`` that do not exist yet (namespace topics are shared, also
    by the tests running at once in other processes)."""
    from confluent_kafka.admin import AdminClient

    existing = AdminClient(broker.client_config()).list_topics(timeout=10).topics
    missing = [name for name in names if name not in existing]
    if missing:
        create_topics(broker, missing, exist_ok=True, **kwargs)


def create_agent_topics(broker: Any, config: RuntimeConfig, partitions: int = 3) -> None:
    """The topics the operator makes for an agent: its own three, the audit, its tasks."""
    topics = config.topics
    create_missing_topics(
        broker,
        [topics.inbox, topics.replies, topics.dead_letter, topics.audit],
        partitions=partitions,
    )
    create_missing_topics(
        broker, [topics.tasks], partitions=partitions, config={"cleanup.policy": "compact"}
    )


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio only: the runtime is asyncio code."""
    return "asyncio"


FAST = {"shutdown_grace": 2.0}
"""Loop timings that keep the tests quick."""


@pytest.fixture(scope="session")
def card_topic(kafka: KafkaBroker) -> str:
    """The shared registry topic, created once (compacted, as the operator makes it)."""
    create_missing_topics(kafka, [AGENT_CARDS_TOPIC], config={"cleanup.policy": "compact"})
    return AGENT_CARDS_TOPIC


StartAgent = Callable[..., Awaitable[AgentHost]]
Connect = Callable[[str], Awaitable[KafkaA2AConnection]]


@pytest.fixture
async def start_agent(kafka: KafkaBroker, card_topic: str) -> AsyncIterator[StartAgent]:
    """Starts agents on the broker (topics made first); stops them all at the end."""
    hosts: list[AgentHost] = []

    async def start(
        config: RuntimeConfig,
        executor: AgentExecutor | None = None,
        *,
        topics: bool = True,
        **host: Any,
    ) -> AgentHost:
        """``host``: more ``AgentHost`` keyword arguments (``lost_interval``)."""
        if topics:
            await asyncio.to_thread(create_agent_topics, kafka, config)
        script = executor or ScriptExecutor()
        agent = AgentHost(config, script, kafka_config=kafka.client_config(), settings=FAST, **host)
        if isinstance(script, ScriptExecutor):
            script.host = agent
        await agent.start()
        hosts.append(agent)
        return agent

    yield start
    for host in reversed(hosts):
        await host.stop()


@pytest.fixture
async def caller(kafka: KafkaBroker) -> AsyncIterator[Connect]:
    """Connects a caller ``<ns>/console`` (a test, not an agent) with its own replies topic."""
    connections: list[KafkaA2AConnection] = []

    async def connect(ns: str) -> KafkaA2AConnection:
        replies = replies_topic(ns, "console")
        await asyncio.to_thread(create_missing_topics, kafka, [replies], partitions=3)
        connection = KafkaA2AConnection(
            kafka.client_config(), replies=replies, sender=f"{ns}/console", timeout=30
        )
        await connection.start()
        connections.append(connection)
        return connection

    yield connect
    for connection in connections:
        await connection.close()
