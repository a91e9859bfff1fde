"""Agents talking A2A over the real broker: task lifecycle, streams, cancel, errors, restarts."""

from __future__ import annotations

import asyncio

import pytest
from a2a.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import InternalError, TaskNotCancelableError, TaskNotFoundError
from chorus_agents.binding import codec
from chorus_agents.binding.client import KafkaA2AConnection, KafkaTransport
from chorus_agents.host import AgentHost

from tests.agents.conftest import (
    Connect,
    ScriptExecutor,
    StartAgent,
    agent_config,
    answer_text,
    namespace,
    user_text,
)
from tests.services.kafka import KafkaBroker, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_FAILED,
}


def transport(connection: KafkaA2AConnection, host: AgentHost) -> KafkaTransport:
    assert host.card is not None
    kafka = host.card.supported_interfaces[0]
    assert kafka.protocol_binding == codec.BINDING_URI
    return connection.transport(host.card, kafka.url)


def states(events: list[StreamResponse]) -> list[int]:
    out: list[int] = []
    for event in events:
        if event.HasField("task"):
            out.append(event.task.status.state)
        elif event.HasField("status_update"):
            out.append(event.status_update.status.state)
    return out


async def test_a_task_goes_submitted_working_completed_with_its_artifact(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    connection = await caller(ns)
    to_risk = transport(connection, risk)

    events = [
        event
        async for event in to_risk.send_message_streaming(
            SendMessageRequest(message=user_text("echo AAPL x100"))
        )
    ]

    assert states(events) == [
        TaskState.TASK_STATE_SUBMITTED,
        TaskState.TASK_STATE_WORKING,
        TaskState.TASK_STATE_COMPLETED,
    ]
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert [part.text for a in artifacts for part in a.parts] == ["echo: AAPL x100"]

    task_id = events[0].task.id
    task = await to_risk.get_task(GetTaskRequest(id=task_id))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(task) == "echo: AAPL x100"
    assert [m.parts[0].text for m in task.history][:1] == ["echo AAPL x100"]

    unary = await to_risk.send_message(SendMessageRequest(message=user_text("echo MSFT x5")))
    assert unary.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(unary.task) == "echo: MSFT x5"

    listed = await to_risk.list_tasks(ListTasksRequest(include_artifacts=True))
    assert {t.id for t in listed.tasks} == {task_id, unary.task.id}


async def test_a_message_answer_has_no_task(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    to_risk = transport(await caller(ns), risk)

    answer = await to_risk.send_message(SendMessageRequest(message=user_text("message hello")))

    assert answer.HasField("message") and not answer.HasField("task")
    assert answer_text(answer.message) == "said: hello"


async def test_a_streamed_answer_arrives_in_order_and_ends(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    connection = await caller(ns)
    to_risk = transport(connection, risk)

    events = [
        event
        async for event in to_risk.send_message_streaming(
            SendMessageRequest(message=user_text("stream 12"))
        )
    ]

    chunks = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert [c.artifact.parts[0].text for c in chunks] == [f"chunk {i};" for i in range(12)]
    assert [c.append for c in chunks] == [False] + [True] * 11
    assert chunks[-1].last_chunk
    assert states(events)[-1] == TaskState.TASK_STATE_COMPLETED

    # On the wire: one partition (the conversation's key), numbered, only the last marked the end.

    records = await asyncio.to_thread(read_topic, kafka, connection.replies_topic)
    answer = [r for r in records if codec.decode_response(r.value(), r.headers()).seq >= 0]
    by_call: dict[str, list[codec.A2AResponse]] = {}
    partitions: dict[str, set[int]] = {}
    for record in answer:
        response = codec.decode_response(record.value(), record.headers())
        by_call.setdefault(response.correlation_id, []).append(response)
        partitions.setdefault(response.correlation_id, set()).add(record.partition() or 0)
    (responses,) = by_call.values()
    assert [r.seq for r in responses] == list(range(len(events)))
    assert [r.end for r in responses] == [False] * (len(events) - 1) + [True]
    assert all(len(p) == 1 for p in partitions.values())
    assert {r.sender for r in responses} == {f"{ns}/risk"}


async def test_a_running_task_is_cancelled(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    script = ScriptExecutor()
    risk = await start_agent(agent_config(ns, "risk", kafka), script)
    to_risk = transport(await caller(ns), risk)

    events: list[StreamResponse] = []
    working = asyncio.Event()

    async def follow() -> None:
        async for event in to_risk.send_message_streaming(
            SendMessageRequest(message=user_text("wait"))
        ):
            events.append(event)
            if TaskState.TASK_STATE_WORKING in states([event]):
                working.set()

    stream = asyncio.create_task(follow())
    await asyncio.wait_for(working.wait(), 20)
    task_id = events[0].task.id

    cancelled = await to_risk.cancel_task(CancelTaskRequest(id=task_id))

    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    await asyncio.wait_for(stream, 20)  # the stream ends by itself with the final state
    assert states(events)[-1] == TaskState.TASK_STATE_CANCELED
    assert script.cancelled == [task_id]
    assert (
        await to_risk.get_task(GetTaskRequest(id=task_id))
    ).status.state == TaskState.TASK_STATE_CANCELED
    with pytest.raises(TaskNotCancelableError):
        await to_risk.cancel_task(CancelTaskRequest(id=task_id))


async def test_errors_come_back_as_the_sdk_errors(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    to_risk = transport(await caller(ns), risk)

    with pytest.raises(TaskNotFoundError):
        await to_risk.get_task(GetTaskRequest(id="no-such-task"))
    with pytest.raises(TaskNotFoundError):
        await to_risk.cancel_task(CancelTaskRequest(id="no-such-task"))

    # An executor that raises fails its task; the caller gets the SDK's InternalError.
    seen: list[StreamResponse] = []
    with pytest.raises(InternalError, match="asked to fail"):
        async for event in to_risk.send_message_streaming(
            SendMessageRequest(message=user_text("fail"))
        ):
            seen.append(event)
    task = await to_risk.get_task(GetTaskRequest(id=seen[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_FAILED
    with pytest.raises(InternalError, match="asked to fail"):
        await to_risk.send_message(SendMessageRequest(message=user_text("fail")))


async def test_subscribing_to_a_running_task_follows_it_to_the_end(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    risk = await start_agent(agent_config(ns, "risk", kafka))
    to_risk = transport(await caller(ns), risk)
    started = await to_risk.send_message(
        SendMessageRequest(
            message=user_text("wait"),
            configuration=SendMessageConfiguration(return_immediately=True),
        )
    )
    task_id = started.task.id
    assert started.task.status.state not in TERMINAL

    seen: list[StreamResponse] = []

    async def follow() -> None:
        async for event in to_risk.subscribe(SubscribeToTaskRequest(id=task_id)):
            seen.append(event)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    await to_risk.cancel_task(CancelTaskRequest(id=task_id))
    await asyncio.wait_for(follower, 20)

    assert seen[0].task.id == task_id
    assert states(seen)[-1] == TaskState.TASK_STATE_CANCELED


async def test_an_agent_calls_another_by_name_over_kafka(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    await start_agent(agent_config(ns, "risk", kafka))
    desk = await start_agent(agent_config(ns, "desk", kafka))
    to_desk = transport(await caller(ns), desk)

    answer = await to_desk.send_message(
        SendMessageRequest(message=user_text("ask risk echo NVDA x7"))
    )

    assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(answer.task) == "risk says echo: NVDA x7"
    assert f"{ns}/risk" in desk.directory.known()


async def test_tasks_survive_a_restart_and_unfinished_ones_fail(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    ns = namespace()
    config = agent_config(ns, "risk", kafka)
    first = await start_agent(config)
    connection = await caller(ns)
    done = await transport(connection, first).send_message(
        SendMessageRequest(message=user_text("echo kept"))
    )
    running = await transport(connection, first).send_message(
        SendMessageRequest(
            message=user_text("wait"),
            configuration=SendMessageConfiguration(return_immediately=True),
        )
    )
    await first.stop()

    second = await start_agent(config, topics=False)
    to_second = transport(connection, second)
    kept = await to_second.get_task(GetTaskRequest(id=done.task.id))
    interrupted = await to_second.get_task(
        GetTaskRequest(id=running.task.id), context=ClientCallContext(timeout=20)
    )

    assert kept.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_text(kept) == "echo: kept"
    assert interrupted.status.state == TaskState.TASK_STATE_FAILED
    assert "restarted" in interrupted.status.message.parts[0].text


async def test_an_answer_too_large_to_write_fails_its_request_alone_and_a_huge_request_is_refused(
    kafka: KafkaBroker, start_agent: StartAgent, caller: Connect
) -> None:
    """Over Kafka: a 600 kB message fits the inbox, but its task (the message in its
    history, the echo in its artifact) could never be written: that request alone fails
    with ``output-too-large`` (dead letter too), while a request in the same commit
    completes. A 1 MiB and a 10 MiB request are refused by the caller's client with
    their size, before they reach Kafka. The agent serves on."""
    ns = namespace()
    config = agent_config(ns, "risk", kafka)
    risk = await start_agent(config)
    to_risk = transport(await caller(ns), risk)

    big, ok = await asyncio.gather(
        to_risk.send_message(SendMessageRequest(message=user_text("echo " + "x" * 600_000))),
        to_risk.send_message(SendMessageRequest(message=user_text("echo ok"))),
        return_exceptions=True,
    )

    assert isinstance(big, InternalError) and "output-too-large" in big.message, big
    assert not isinstance(ok, BaseException) and ok.task.status.state in TERMINAL
    assert answer_text(ok.task) == "echo: ok"
    for size in (1 << 20, 10 << 20):
        with pytest.raises(A2AClientError, match=r"bytes\) not sent: .*too large"):
            await to_risk.send_message(SendMessageRequest(message=user_text("echo " + "x" * size)))
    after = await to_risk.send_message(SendMessageRequest(message=user_text("echo still here")))
    assert answer_text(after.task) == "echo: still here"

    async def dead_letters() -> list[str]:
        while True:
            found = await asyncio.to_thread(read_topic, kafka, config.topics.dead_letter)
            if found:
                return [codec.header_map(record.headers())[codec.ERROR_REASON] for record in found]
            await asyncio.sleep(0.2)

    assert await asyncio.wait_for(dead_letters(), 30) == ["output-too-large"]
