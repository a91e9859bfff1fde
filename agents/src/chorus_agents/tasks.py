"""Where an agent keeps its A2A tasks: a compacted Kafka topic, mirrored in memory.

:class:`KafkaTaskStore` is an a2a-sdk ``TaskStore``: reads are served from memory,
every write also becomes a record of the agent's ``.tasks`` topic (key = task id, value
= the task in ProtoJSON, a tombstone for a deletion), queued in the :class:`Outbox` and
so committed in the same transaction as the input that caused it. At start,
:meth:`KafkaTaskStore.load` replays the topic, so tasks survive a restart. Unit tests
use a2a-sdk's ``InMemoryTaskStore`` behind the same interface.

Replicas share their tasks: after the replay, :meth:`KafkaTaskStore.follow` keeps
reading the topic (every partition, assigned, ``read_committed``) and applies what the
other replicas commit. Each record carries a per-task version (``chorus-task-version``)
and its writer (``chorus-task-writer``, the replica's instance name); a record replaces
the task a replica holds only when it *supersedes* it (:func:`supersedes`): a terminal
state is never replaced by a non-terminal one, a terminal one replaces any
non-terminal one, otherwise the higher ``(version, writer)`` wins. So a replica never
regresses a task it is itself updating, and every replica (and a restart's replay)
settles on the same state whatever order the records arrive in. A replica that keeps
its own state against an older record re-writes it, so the topic's last record (what
compaction keeps) is the state that won. :meth:`KafkaTaskStore.caught_up` is the
read-your-writes barrier: it waits until the tail has read up to the topic's current
end offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Role, Task, TaskState
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from chorus_agents.binding.codec import InvalidHeader, OutRecord, header_map
from chorus_agents.binding.outbox import Outbox
from chorus_agents.kafka import helper_group
from chorus_agents.proto import ParseError, from_json, to_json

__all__ = [
    "TERMINAL_STATES",
    "InMemoryTaskStore",
    "KafkaTaskStore",
    "RunningTask",
    "TaskOwner",
    "TaskStore",
    "supersedes",
]

log = logging.getLogger(__name__)

OWNER = "chorus-task-owner"
WRITER = "chorus-task-writer"
VERSION = "chorus-task-version"
SOURCE = "chorus-task-source"
"""The input record a write came from: ``<topic>/<partition>`` (absent for HTTP writes)."""
RUNNING_STATES = frozenset({TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING})
"""States in which a task is executing somewhere (interrupted ones wait for their caller)."""
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


@dataclass(frozen=True)
class _Stamp:
    """What a replica knows about the task version it holds."""

    version: int
    writer: str
    owner: str
    state: int
    source: tuple[str, int] | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class RunningTask:
    """A task that executes on the replica that wrote it last (see :mod:`chorus_agents.lost`)."""

    task_id: str
    writer: str
    source: tuple[str, int] | None
    """The topic and partition of the input its last write came from."""


def supersedes(version: int, writer: str, state: int, current: _Stamp) -> bool:
    """Whether a record (``version``, ``writer``, ``state``) replaces the task held as ``current``.

    A terminal task never goes back to a non-terminal state; a terminal state replaces
    any non-terminal one; otherwise the higher ``(version, writer)`` wins. Records
    without a version (written before versions existed) follow the topic's order.
    """
    terminal = state in TERMINAL_STATES
    if current.terminal != terminal:
        return terminal
    if version == 0 or current.version == 0:
        return True
    return (version, writer) > (current.version, current.writer)


def _context(owner: str) -> ServerCallContext:
    return ServerCallContext(user=TaskOwner(owner))


class KafkaTaskStore(TaskStore):
    """A ``TaskStore`` whose writes go to a compacted topic through the outbox.

    Concurrency: like the SDK's stores, safe for any number of coroutines of one event
    loop. Tasks are copied in and out, so a caller mutating a task it got does not
    change the store. A write is durable once the server loop commits its transaction;
    other replicas see it once it is committed and their :meth:`follow` read it.

    A write never moves a task that has ended (here or on another replica) to another
    state: it is dropped and logged, as the SDK's ``TaskUpdater`` refuses updates after
    a terminal state. ``on_ended`` is called (from the event loop) when another
    replica ends a task this one holds unfinished: the server stops its execution if
    it runs here (a ``CancelTask`` served by another replica).

    ``group`` names the consumer group of the replay and the tail (never joined nor
    committed); give one the agent's KafkaUser may use (the host:
    ``chorus.<ns>.<agent>.tasks-reader``). ``writer`` is the replica's instance name.
    """

    def __init__(
        self,
        topic: str,
        outbox: Outbox,
        *,
        writer: str | None = None,
        group: str | None = None,
        barrier_timeout: float = 5.0,
        poll: float = 0.2,
    ) -> None:
        self.topic = topic
        self.group = group
        self.barrier_timeout = barrier_timeout
        self.on_ended: Callable[[Task, ServerCallContext], None] | None = None
        self._poll = poll
        self._outbox = outbox
        self._writer = writer or uuid.uuid4().hex
        self._memory = InMemoryTaskStore()
        self._stamps: dict[str, _Stamp] = {}
        self._consumer: Consumer | None = None
        self._partitions: list[int] = []
        self._reached: dict[int, int] = {}
        """Per partition, the offset the reader has read up to (the next one)."""
        self._advanced = asyncio.Event()
        self._following = False
        self._logged: dict[str, float] = {}

    @property
    def writer(self) -> str:
        """This replica's name in the records it writes."""
        return self._writer

    # --- the TaskStore interface ----------------------------------------------------------

    async def save(self, task: Task, context: ServerCallContext) -> None:
        """Saves ``task`` in memory and queues its record; durable at the next commit."""
        owner = context.user.user_name
        current = self._stamps.get(task.id)
        state = task.status.state
        if current is not None and current.terminal and state != current.state:
            log.info(
                "task store %s: task %s already ended (%s); a write of %s is dropped",
                self.topic,
                task.id,
                TaskState.Name(current.state),
                TaskState.Name(state),
            )
            return
        version = (current.version if current is not None else 0) + 1
        source = Outbox.source() or (current.source if current is not None else None)
        await self._memory.save(task, context)
        self._stamps[task.id] = _Stamp(version, self._writer, owner, state, source)
        self._outbox.append(self._record(task, owner, version, source))

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        """The task ``task_id`` of the caller's owner, or ``None``."""
        return await self._memory.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The caller's tasks, filtered and paged as a2a-sdk's in-memory store does."""
        return await self._memory.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Deletes the task and queues its tombstone."""
        await self._memory.delete(task_id, context)
        self._stamps.pop(task_id, None)
        self._outbox.append(
            OutRecord(
                topic=self.topic,
                key=task_id.encode("utf-8"),
                value=None,
                headers=(
                    (OWNER, context.user.user_name.encode("utf-8")),
                    (WRITER, self._writer.encode("utf-8")),
                ),
            )
        )

    def _record(
        self, task: Task, owner: str, version: int, source: tuple[str, int] | None
    ) -> OutRecord:
        headers = [
            (OWNER, owner.encode("utf-8")),
            (WRITER, self._writer.encode("utf-8")),
            (VERSION, str(version).encode("ascii")),
        ]
        if source is not None:
            headers.append((SOURCE, f"{source[0]}/{source[1]}".encode()))
        return OutRecord(
            topic=self.topic,
            key=task.id.encode("utf-8"),
            value=to_json(task).encode("utf-8"),
            headers=tuple(headers),
        )

    # --- what the server asks -------------------------------------------------------------

    def known(self, task_id: str) -> bool:
        """Whether this replica holds the task (of any owner)."""
        return task_id in self._stamps

    async def caught_up(self, timeout: float | None = None) -> bool:
        """Waits until the tail has read the topic up to its current end offsets.

        The read-your-writes barrier: a task whose write was committed (by any
        replica) before this call is held once it returns ``True``. ``False`` when
        the time (default ``barrier_timeout``) ran out or the end offsets could not be
        read; without a tail (not following) there is nothing to wait for: ``True``.
        """
        consumer = self._consumer
        if consumer is None or not self._following:
            return True
        limit = self.barrier_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            ends = await asyncio.to_thread(_end_offsets, consumer, self.topic, self._partitions)
        except Exception as exc:  # the tail goes on; the answer is what is held
            log.warning("task store %s: end offsets unknown: %s", self.topic, exc)
            return False
        while any(self._reached.get(p, 0) < end for p, end in ends.items()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._following:
                return False
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), remaining)
        return True

    # --- replay and tail ------------------------------------------------------------------

    async def load(self, kafka_config: Mapping[str, Any], *, timeout: float = 60.0) -> int:
        """Replays the topic from its beginning to its end; returns how many tasks it holds.

        Reads committed records only, so a write of an aborted transaction never
        comes back. Call it before serving: writes made meanwhile would be overwritten.
        The reader stays open for :meth:`follow` (or :meth:`close`).
        """
        consumer = Consumer(
            {
                **kafka_config,
                "group.id": self.group or helper_group(self.topic, "reader"),
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 100,
            }
        )
        try:
            metadata = await asyncio.to_thread(consumer.list_topics, self.topic, timeout=timeout)
            topic = metadata.topics[self.topic]
            if topic.error is not None:
                raise RuntimeError(f"task store {self.topic}: {topic.error}")
            self._partitions = sorted(topic.partitions)
            consumer.assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions]
            )
            self._consumer = consumer
            pending = set(self._partitions)
            deadline = time.monotonic() + timeout
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"task store {self.topic}: not read to the end in {timeout:.0f}s"
                    )
                messages = await asyncio.to_thread(consumer.consume, 500, 0.5)
                for partition in await self._take(messages, live=False):
                    pending.discard(partition)
        except BaseException:
            self._consumer = None
            await asyncio.to_thread(consumer.close)
            raise
        return len(self._stamps)

    async def follow(self, stop: asyncio.Event) -> None:
        """After :meth:`load`: applies what every replica commits, until ``stop`` is set."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"task store {self.topic}: follow() before load()")
        self._following = True
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(consumer.consume, 500, self._poll)
                if messages:  # nothing read: a waiting barrier has nothing to re-check
                    await self._take(messages, live=True)
                    self._wake()
        except KafkaException as exc:
            log.error("task store %s: the tail stopped: %s", self.topic, exc)
        finally:
            self._following = False
            self._wake()
            await self.close()

    async def close(self) -> None:
        """Closes the reader (:meth:`follow` does it when it ends)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await asyncio.to_thread(consumer.close)

    def _wake(self) -> None:
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    async def _take(self, messages: Sequence[Any], *, live: bool) -> set[int]:
        """Applies ``messages``; returns the partitions whose end was reached."""
        ends: set[int] = set()
        for message in messages:
            partition, offset = message.partition(), message.offset()
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends.add(partition)
                    self._reached[partition] = max(self._reached.get(partition, 0), offset)
                elif error.fatal():
                    raise KafkaException(error)
                elif error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                    self._warn(f"task store {self.topic}: {error.str()}")
                continue
            self._reached[partition] = max(self._reached.get(partition, 0), offset + 1)
            key = message.key()
            if key is not None:
                await self._apply(key, message.value(), message.headers(), live=live)
        return ends

    async def _apply(self, key: bytes, value: bytes | None, raw: Any, *, live: bool) -> None:
        task_id = key.decode("utf-8", errors="replace")
        try:
            headers = header_map(raw)
        except InvalidHeader:
            headers = {}
        writer = headers.get(WRITER, "")
        if live and writer == self._writer:
            return  # this replica's own write: memory already holds it, or a later one
        owner = headers.get(OWNER, "")
        try:
            version = int(headers.get(VERSION, "0"))
        except ValueError:
            version = 0
        current = self._stamps.get(task_id)
        if value is None:
            if current is not None:
                await self._memory.delete(task_id, _context(current.owner))
                del self._stamps[task_id]
            return
        try:
            task = from_json(value, Task())
        except ParseError as exc:
            log.warning("task store %s: skipping unreadable task %s: %s", self.topic, task_id, exc)
            return
        state = task.status.state
        if current is not None and not supersedes(version, writer, state, current):
            if live and current.writer == self._writer:
                await self._reassert(task_id, current, version)
            return
        if current is not None and current.owner != owner:
            await self._memory.delete(task_id, _context(current.owner))
        await self._memory.save(task, _context(owner))
        stamp = _Stamp(version, writer, owner, state, _source(headers.get(SOURCE, "")))
        self._stamps[task_id] = stamp
        ended = stamp.terminal and (current is None or not current.terminal)
        if live and ended and current is not None and self.on_ended is not None:
            self.on_ended(task, _context(owner))

    async def _reassert(self, task_id: str, current: _Stamp, seen: int) -> None:
        """Writes this replica's state of ``task_id`` again, after an older record of it.

        That record may be later in the topic than this replica's own write; the
        re-write makes the state that won the topic's last record for the task.
        """
        task = await self._memory.get(task_id, _context(current.owner))
        if task is None:
            return
        version = max(current.version, seen) + 1
        self._stamps[task_id] = _Stamp(
            version, self._writer, current.owner, current.state, current.source
        )
        self._outbox.append(self._record(task, current.owner, version, current.source))

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(text, -60.0) >= 60.0:
            self._logged[text] = now
            log.warning("%s", text)

    def running(self) -> tuple[RunningTask, ...]:
        """The tasks held as submitted or working: each executes on its last writer."""
        return tuple(
            RunningTask(task_id, stamp.writer, stamp.source)
            for task_id, stamp in self._stamps.items()
            if stamp.state in RUNNING_STATES
        )

    async def fail(self, task_id: str, reason: str, why: str) -> bool:
        """Ends a submitted or working task as failed, its status message
        ``<reason>: <why>``; ``False`` when it is not running (any more)."""
        stamp = self._stamps.get(task_id)
        if stamp is None or stamp.state not in RUNNING_STATES:
            return False
        context = _context(stamp.owner)
        task = await self._memory.get(task_id, context)
        if task is None:
            return False
        if task.status.HasField("message"):
            task.history.append(task.status.message)
        task.status.Clear()
        task.status.state = TaskState.TASK_STATE_FAILED
        task.status.message.role = Role.ROLE_AGENT
        task.status.message.message_id = f"{task_id}-{reason}"
        task.status.message.task_id = task_id
        task.status.message.context_id = task.context_id
        task.status.message.parts.add().text = f"{reason}: {why}"
        task.status.timestamp.FromDatetime(datetime.now(UTC))
        await self.save(task, context)
        return True


def _source(text: str) -> tuple[str, int] | None:
    topic, _, partition = text.rpartition("/")
    return (topic, int(partition)) if topic and partition.isdigit() else None


def _end_offsets(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    """The current end (high watermark) of each partition; blocking."""
    ends: dict[int, int] = {}
    for partition in partitions:
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=5.0, cached=False
        )
        ends[partition] = high
    return ends
