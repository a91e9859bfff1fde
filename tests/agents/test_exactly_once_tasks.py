"""Exactly one terminal task state per A2A request, despite SIGKILLs inside transactions.

The agent (``chorus agent run``, a real subprocess) serves ``SendMessage`` requests from
its inbox: each makes a task that works for the request's latency (most instant, some
up to 1.5 s, one in 40 past the old 30 s limit) and completes. A request is committed
once its task is stored as submitted or working; the task's later states commit as they
happen.

The process is SIGKILLed three times while a transaction with records is open on the
task topic (stopped with SIGSTOP, seen to have one open, then killed; proven as in
``test_exactly_once.py``: a ``read_uncommitted`` reader sees records the committed one
does not). The first two restarts keep the instance name, so
the restarted replica fails what it was running (``restarted``). The last one is a
replaced pod, a new name: the tasks the old replica left working must be failed with
``replica-lost`` by the new one once the old member has left the group.

Read committed, the task topic must then hold one task per request, each ending in
exactly one terminal state (a terminal state is never followed by another state). The
control is in the test: right after the last restart, the same check finds tasks left
unfinished, so it can tell.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from a2a.helpers import new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Role, SendMessageRequest, Task, TaskState
from chorus_agents.binding import codec
from chorus_agents.proto import from_json
from chorus_agents.tasks import TERMINAL_STATES
from chorus_api.topics import replies_topic
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from tests.agents.conftest import create_missing_topics
from tests.agents.echo_process import (
    PARTITIONS,
    EchoAgent,
    OpenTransactions,
    aborted,
    ensure_stopped,
    kill_inside_transaction,
    latency,
    settle,
    tail,
)

REQUESTS = 2_000
"""At most: the test feeds requests as the agent ends tasks, and checks those it fed."""
KEYS = 16
KILLS = 3
STRIDE = 100
"""Tasks ended between kills."""
AHEAD = 120
"""Requests fed beyond the tasks ended (so the agent always has work)."""
LONG_S = 31.0
PAD = "x" * 16_000
"""Each request's padding, kept in its task's history: bigger transactions stay open
long enough to be killed in."""


def task_latency(n: int) -> float:
    """Request ``n``'s working time: one in 40 past the old 30 s limit, else an echo's."""
    return LONG_S if n % 40 == 20 else latency(n)


class SlowTaskExecutor(AgentExecutor):
    """Works on the task for the request's latency (its text is ``n``), then completes it."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None
        n = int(context.get_user_input().split()[0])
        history = [context.message] if context.message is not None else []
        await event_queue.enqueue_event(
            new_task(
                context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED, history=history
            )
        )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        await asyncio.sleep(task_latency(n))
        await updater.add_artifact([new_text_part(f"done {n}")], name="result")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


class Requests:
    """Writes ``SendMessage`` requests ``0..count`` to the inbox, in order, as a caller would."""

    def __init__(self, kafka: Any, agent: EchoAgent) -> None:
        self.producer = Producer(kafka.client_config(**{"linger.ms": 20}))
        self.inbox = agent.topics.inbox
        self.replies = replies_topic(agent.namespace, "console")
        create_missing_topics(kafka, [self.replies], partitions=1)
        self.sender = f"{agent.namespace}/console"
        self.fed = 0

    def feed_to(self, count: int) -> None:
        for n in range(self.fed, min(count, REQUESTS)):
            text = f"{n} {PAD}"
            message = new_text_message(text, context_id=f"c{n % KEYS}", role=Role.ROLE_USER)
            message.message_id = f"m{n}"
            record = codec.encode_request(
                "SendMessage",
                SendMessageRequest(message=message),
                topic=self.inbox,
                request_id=f"r{n}",
                reply_to=self.replies,
                sender=self.sender,
            )
            self.producer.produce(
                record.topic, key=record.key, value=record.value, headers=list(record.headers)
            )
        self.fed = max(self.fed, min(count, REQUESTS))
        assert self.producer.flush(30) == 0


class TaskLog:
    """Reads the task topic on from where it stopped: every record, per task."""

    def __init__(self, kafka: Any, topic: str, *, committed: bool) -> None:
        self.consumer = Consumer(
            kafka.client_config(
                **{
                    "group.id": f"reader-{topic}-{committed}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed" if committed else "read_uncommitted",
                }
            )
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.count = 0
        self.states: dict[str, list[int]] = defaultdict(list)
        """Per task id, the states its records carry, in the topic's order."""
        self.requests: dict[str, int] = {}
        """Per task id, its request's ``n``."""
        self.reasons: dict[str, str] = {}

    def poll(self) -> int:
        for message in self.consumer.consume(500, 0.05):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(error.str())
                continue
            self.count += 1
            task = from_json(message.value() or b"", Task())
            self.states[task.id].append(task.status.state)
            self.requests[task.id] = int(task.history[0].parts[0].text.split()[0])
            if task.status.message.parts:
                self.reasons[task.id] = task.status.message.parts[0].text
        return self.count

    def settle(self) -> int:
        return settle(self)

    def ended(self) -> int:
        return sum(1 for states in self.states.values() if states[-1] in TERMINAL_STATES)

    def check(self, fed: int) -> tuple[list[int], list[int], dict[int, list[str]]]:
        """Requests without a task, tasks not ended, and tasks with more than one
        terminal state (or a state after a terminal one), by request ``n``."""
        have = set(self.requests.values())
        missing = [n for n in range(fed) if n not in have]
        unfinished = sorted(
            self.requests[t]
            for t, states in self.states.items()
            if states[-1] not in TERMINAL_STATES
        )
        twice: dict[int, list[str]] = {}
        for task_id, states in self.states.items():
            ended = [i for i, state in enumerate(states) if state in TERMINAL_STATES]
            if ended and (
                len({states[i] for i in ended}) > 1 or ended[0] != len(states) - len(ended)
            ):
                twice[self.requests[task_id]] = [TaskState.Name(s) for s in states]
        return missing, unfinished, twice

    def close(self) -> None:
        self.consumer.close()


def wait_for(
    done: Callable[[], bool],
    agent: EchoAgent,
    log: TaskLog,
    what: str,
    timeout: float,
    between: Callable[[], object] | None = None,
) -> None:
    """Reads the task log until ``done()``, calling ``between`` at each turn."""
    deadline = time.monotonic() + timeout
    while not done():
        agent.alive()
        if between is not None:
            between()
        log.poll()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {log.ended()} tasks ended:\n{tail(agent.log)}")


@pytest.mark.runtime
@pytest.mark.seconds(60)
def test_every_request_ends_in_exactly_one_terminal_state_despite_sigkills(
    kafka: Any, tmp_path: Path
) -> None:
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    agent.document["handler"] = "tests.agents.test_exactly_once_tasks:SlowTaskExecutor"
    agent.document["topics"] = {"subscribe": [], "publish": []}
    tasks_topic = agent.topics.tasks
    requests = Requests(kafka, agent)
    requests.feed_to(AHEAD)
    committed = TaskLog(kafka, tasks_topic, committed=True)
    uncommitted = TaskLog(kafka, tasks_topic, committed=False)
    transactions = OpenTransactions(kafka, tasks_topic)

    at_kill: list[int] = []

    def keep_busy() -> None:
        requests.feed_to(committed.ended() + AHEAD)
        committed.poll()

    agent.start()
    try:
        for kill in range(KILLS):
            stable = transactions.stable()
            point = committed.ended() + STRIDE
            wait_for(
                lambda p=point: committed.ended() >= p,  # type: ignore[misc]
                agent,
                committed,
                f"{point} tasks ended",
                timeout=120,
                between=lambda: requests.feed_to(committed.ended() + AHEAD),
            )
            kill_inside_transaction(agent, transactions, stable, keep_busy)
            at_kill.append(committed.ended())
            agent.start("replica-1" if kill == KILLS - 1 else "replica-0")
        # The control: what the old replica left working is unfinished until it is failed.
        left = committed.check(requests.fed)[1]
        wait_for(
            lambda: not any(committed.check(requests.fed)[:2]),
            agent,
            committed,
            "a terminal state for every request",
            timeout=150,
        )
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    written_then_aborted = aborted(committed, uncommitted)
    committed.close()
    uncommitted.close()

    assert written_then_aborted > 0, f"nothing aborted: no kill hit a transaction ({at_kill})"
    assert left, "right after the last kill, no task was left unfinished: the check proves nothing"
    missing, unfinished, twice = committed.check(requests.fed)
    assert not missing and not unfinished
    assert not twice, f"{len(twice)} tasks ended more than once, e.g. {list(twice.items())[:3]}"
    lost = [t for t, why in committed.reasons.items() if why.startswith("replica-lost")]
    restarted = [t for t, why in committed.reasons.items() if why.startswith("restarted")]
    assert lost, f"no task failed as replica-lost; left unfinished at the last kill: {left}"
    # failed by the new replica, for the one it replaced (what the reader had seen at the
    # kill is fewer: records behind the killed transaction were not readable yet)
    assert all("replica replica-0," in committed.reasons[t] for t in lost), committed.reasons
    assert restarted, "the restarts under the same name failed nothing they ran"
