"""Where an agent keeps its A2A tasks: a compacted Kafka topic, mirrored in memory.

:class:`KafkaTaskStore` is an a2a-sdk ``TaskStore``: reads are served from memory,
every write also becomes a record of the agent's ``.tasks`` topic (key = task id, value
= the task in ProtoJSON, a tombstone for a deletion), queued in the :class:`Outbox` and
so committed in the same transaction as the input that caused it. At start,
:meth:`KafkaTaskStore.load` replays the topic, so tasks survive a restart. Unit tests
use a2a-sdk's ``InMemoryTaskStore`` behind the same interface.

One replica owns a task: the one that ran it. Replicas do not yet tail each other's
writes, so with several replicas ``GetTask`` is answered only by the task's owner
(see docs/runtime.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Task, TaskState

from chorus_agents.binding.codec import OutRecord, header_map
from chorus_agents.binding.outbox import Outbox
from chorus_agents.kafka import read_to_end
from chorus_agents.proto import ParseError, from_json, to_json

__all__ = ["TERMINAL_STATES", "InMemoryTaskStore", "KafkaTaskStore", "TaskOwner", "TaskStore"]

log = logging.getLogger(__name__)

OWNER = "chorus-task-owner"
WRITER = "chorus-task-writer"
TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
    }
)


class TaskOwner(User):
    """The owner recorded with a task, as the SDK's owner resolver sees it."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return bool(self._name)

    @property
    def user_name(self) -> str:
        return self._name


class KafkaTaskStore(TaskStore):
    """A ``TaskStore`` whose writes go to a compacted topic through the outbox.

    Concurrency: like the SDK's stores, safe for any number of coroutines of one event
    loop. Tasks are copied in and out, so a caller mutating a task it got does not
    change the store. A write is durable once the server loop commits its transaction.

    ``group`` names the consumer group of the replay (never joined nor committed); give
    one the agent's KafkaUser may use (the host: ``chorus.<ns>.<agent>.tasks-reader``).
    """

    def __init__(
        self, topic: str, outbox: Outbox, *, writer: str | None = None, group: str | None = None
    ) -> None:
        self.topic = topic
        self.group = group
        self._outbox = outbox
        self._writer = writer or uuid.uuid4().hex
        self._memory = InMemoryTaskStore()

    async def save(self, task: Task, context: ServerCallContext) -> None:
        """Saves ``task`` in memory and queues its record; durable at the next commit."""
        await self._memory.save(task, context)
        owner = context.user.user_name
        self._outbox.append(
            OutRecord(
                topic=self.topic,
                key=task.id.encode("utf-8"),
                value=to_json(task).encode("utf-8"),
                headers=((OWNER, owner.encode("utf-8")), (WRITER, self._writer.encode("utf-8"))),
            )
        )

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        """The task ``task_id`` of the caller's owner, or ``None``."""
        return await self._memory.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The caller's tasks, filtered and paged as a2a-sdk's in-memory store does."""
        return await self._memory.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Deletes the task and queues its tombstone."""
        await self._memory.delete(task_id, context)
        self._outbox.append(
            OutRecord(
                topic=self.topic,
                key=task_id.encode("utf-8"),
                value=None,
                headers=((OWNER, context.user.user_name.encode("utf-8")),),
            )
        )

    async def load(self, kafka_config: Mapping[str, Any], *, timeout: float = 60.0) -> int:
        """Replays the topic from its beginning to its end; returns how many tasks it holds.

        Reads committed records only, so a write of an aborted transaction never
        comes back. Call it before serving: writes made meanwhile would be overwritten.
        """
        records = await asyncio.to_thread(
            read_to_end, kafka_config, self.topic, timeout=timeout, group=self.group
        )
        tasks: dict[str, tuple[str, Task | None]] = {}
        for key, value, headers in records:
            if key is None:
                continue
            task_id = key.decode("utf-8", errors="replace")
            owner = header_map(headers).get(OWNER, "")
            if value is None:
                tasks[task_id] = (owner, None)
                continue
            try:
                tasks[task_id] = (owner, from_json(value, Task()))
            except ParseError as exc:
                log.warning(
                    "task store %s: skipping unreadable task %s: %s", self.topic, task_id, exc
                )
        count = 0
        for owner, task in tasks.values():
            if task is not None:
                await self._memory.save(task, ServerCallContext(user=TaskOwner(owner)))
                count += 1
        return count

    async def unfinished(self) -> tuple[tuple[ServerCallContext, Task], ...]:
        """Every task not in a terminal state (after :meth:`load`), with a context of its owner."""
        impl = getattr(self._memory, "_impl", None)
        owners: dict[str, dict[str, Task]] = getattr(impl, "tasks", {})
        return tuple(
            (ServerCallContext(user=TaskOwner(owner)), task)
            for owner, tasks in owners.items()
            for task in tasks.values()
            if task.status.state not in TERMINAL_STATES
        )
