"""``chorus send <agent> <text>``: an A2A client over Kafka that shows the task as it goes.

The agent is found by name in the AgentCard registry (``chorus.agent-cards``); the
request goes to its inbox through the binding's ``ClientTransport``, the answer comes
back on the console's replies topic, ``chorus.<namespace>.a2a.console.replies`` (created
when missing and allowed). With ``--stream`` each event is shown as it arrives
(submitted, working, artifacts, completed); without it, the final task.
Exit code 0 when the task completed (or the agent answered with a message), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated, Any

import typer
from a2a.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.helpers import new_text_message
from a2a.types.a2a_pb2 import (
    Message,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError
from chorus_api.topics import AGENT_CARDS_TOPIC, consumer_group, replies_topic
from rich.console import Console

from chorus_agents.binding.client import KafkaA2AConnection
from chorus_agents.calls import AgentCaller, fold
from chorus_agents.card import AgentDirectory, AgentNotFound
from chorus_agents.cli.options import BootstrapServers, KafkaOptions, Namespace, kafka_options

CONSOLE = "console"
"""The caller's name: ``<namespace>/console`` in ``chorus-sender``."""


def send(
    agent: Annotated[str, typer.Argument(help="The agent's name (or namespace/name).")],
    text: Annotated[str, typer.Argument(help="The message to send.")],
    namespace: Namespace = "default",
    bootstrap_servers: BootstrapServers = "localhost:9092",
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Show each event.")] = False,
    context_id: Annotated[str | None, typer.Option(help="Continue this conversation.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 120.0,
    kafka_option: KafkaOptions = None,
) -> None:
    """Sends TEXT to AGENT over Kafka and shows the task's progress."""
    config = {"bootstrap.servers": bootstrap_servers, **kafka_options(kafka_option)}
    console = Console(highlight=False, soft_wrap=True)
    try:
        ok = asyncio.run(
            _send(config, namespace, agent, text, stream, context_id, timeout, console)
        )
    except AgentNotFound as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except (A2AError, A2AClientError) as exc:  # the agent answered with an error
        console.print(f"[red]error:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if ok else 1)


async def _send(
    config: dict[str, Any],
    namespace: str,
    agent: str,
    text: str,
    stream: bool,
    context_id: str | None,
    timeout: float,
    console: Console,
) -> bool:
    replies = replies_topic(namespace, CONSOLE)
    await asyncio.to_thread(_ensure_topic, config, replies)
    async with KafkaA2AConnection(
        config, replies=replies, sender=f"{namespace}/{CONSOLE}", timeout=timeout
    ) as connection:
        caller = AgentCaller(
            connection,
            AgentDirectory(
                config,
                AGENT_CARDS_TOPIC,
                namespace=namespace,
                # Under the console's group prefix, as an agent's host reads it under its own.
                group=f"{consumer_group(namespace, CONSOLE)}.cards-reader",
            ),
        )
        client = await caller.client(agent)
        message = new_text_message(text, context_id=context_id, role=Role.ROLE_USER)
        call = ClientCallContext(service_parameters={"chorus-user": getpass.getuser()})
        final: Task | Message | None = None
        try:
            if stream:
                async for event in client.send_message(
                    SendMessageRequest(message=message), context=call
                ):
                    show_event(console, event)
                    final = fold(final, event)
            else:
                async for event in client.send_message(
                    SendMessageRequest(message=message), context=call
                ):
                    final = fold(final, event)
                if isinstance(final, Task):
                    show_task(console, final)
                elif isinstance(final, Message):
                    console.print(f"[cyan]message[/] {_text(final.parts)}")
        finally:
            await client.close()
    if isinstance(final, Message):
        return True
    return isinstance(final, Task) and final.status.state == TaskState.TASK_STATE_COMPLETED


def _ensure_topic(config: dict[str, Any], topic: str) -> None:
    """Creates the console's replies topic when it does not exist (and we may)."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient(config)
    if topic in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=1)])
    for future in futures.values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # raced with another console, or not allowed: say which
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise typer.BadParameter(f"replies topic {topic}: {exc}") from None


def state_name(state: int) -> str:
    """``TASK_STATE_WORKING`` as ``working``."""
    name: str = TaskState.Name(state)
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")


def _text(parts: Any) -> str:
    return "".join(part.text for part in parts if part.HasField("text"))


def show_task(console: Console, task: Task) -> None:
    """The task's artifacts, then its final state."""
    for artifact in task.artifacts:
        console.print(
            f"[magenta]artifact[/] {artifact.name or artifact.artifact_id}: {_text(artifact.parts)}"
        )
    status = _text(task.status.message.parts) if task.status.HasField("message") else ""
    console.print(
        f"[bold]{state_name(task.status.state)}[/] task {task.id}"
        + (f": {status}" if status else "")
    )


def show_event(console: Console, event: StreamResponse) -> None:
    """Prints one streamed event."""
    if event.HasField("task"):
        task = event.task
        console.print(
            f"[bold]{state_name(task.status.state)}[/] task {task.id} (context {task.context_id})"
        )
        return
    if event.HasField("status_update"):
        update = event.status_update
        note = _text(update.status.message.parts) if update.status.HasField("message") else ""
        console.print(f"[bold]{state_name(update.status.state)}[/]" + (f": {note}" if note else ""))
        return
    if event.HasField("artifact_update"):
        artifact = event.artifact_update.artifact
        console.print(
            f"[magenta]artifact[/] {artifact.name or artifact.artifact_id}: {_text(artifact.parts)}"
        )
        return
    if event.HasField("message"):
        console.print(f"[cyan]message[/] {_text(event.message.parts)}")
