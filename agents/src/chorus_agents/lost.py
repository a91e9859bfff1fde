"""Tasks left running by a replica that is gone: failed with the reason ``replica-lost``.

An accepted A2A request is committed once its task is stored; the task then runs on in
the replica that accepted it. If that process dies and comes back under its name (a
restart), it fails what it was running as it starts (``restarted``). If it does not come
back (a pod replaced under a new name, a scale-down), nobody else would: the task would
say ``working`` for ever. So every replica watches for them:

- **Gone** means: the task's last writer (a replica's instance name, in each task-store
  record) is not a member of the agent's consumer group, in two scans ``interval``
  apart, while the group is stable. Members are told apart by their ``client.id``
  (:func:`client_id`). A killed member leaves the group when its session times out
  (``session.timeout.ms``, 45 s by default), so a lost task is failed within that plus
  two intervals: about 65 s with the defaults.
- **Who fails it:** the replica that consumes the partition the task's request came
  from (recorded with the task); for a task written outside Kafka (the HTTP gateway),
  the live replica with the lowest instance name. So one replica writes the failure.

A lost task is failed, not run again: a model call, a tool call or a peer's answer may
have happened already, and running the task again would do them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from chorus_agents.tasks import KafkaTaskStore, RunningTask

log = logging.getLogger(__name__)

CLIENT_PREFIX = "chorus-replica:"
REASON = "replica-lost"


def client_id(instance: str) -> str:
    """The consumer's ``client.id``: how the group's members name their replica."""
    return f"{CLIENT_PREFIX}{instance}"


def lost(
    running: Iterable[RunningTask],
    *,
    live: frozenset[str],
    absent_before: frozenset[str],
    me: str,
    owns: Callable[[tuple[str, int]], bool],
) -> tuple[list[RunningTask], frozenset[str]]:
    """The tasks this replica fails now, and the writers absent in this scan.

    ``live``: the instance names in the group now; ``absent_before``: the writers absent
    in the scan before; ``owns``: whether this replica consumes a topic partition.
    """
    others = [task for task in running if task.writer != me]
    absent = frozenset(task.writer for task in others if task.writer not in live)
    lowest = min(live | {me})
    mine = [
        task
        for task in others
        if task.writer in absent & absent_before
        and (owns(task.source) if task.source is not None else me == lowest)
    ]
    return mine, absent


class LostTasks:
    """Scans the task store every ``interval`` seconds and fails lost tasks; see the module."""

    def __init__(
        self,
        store: KafkaTaskStore,
        *,
        members: Callable[[], Awaitable[frozenset[str] | None]],
        owns: Callable[[tuple[str, int]], bool],
        interval: float = 10.0,
    ) -> None:
        self.store = store
        self.members = members
        self.owns = owns
        self.interval = interval
        self.failed = 0
        self._absent: frozenset[str] = frozenset()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            if stop.is_set():
                return
            try:
                await self.scan()
            except Exception as exc:  # the next scan tries again
                log.warning("lost tasks: scan failed: %s", exc)

    async def scan(self) -> list[str]:
        """One scan; returns the ids of the tasks it failed."""
        running = self.store.running()
        if not any(task.writer != self.store.writer for task in running):
            self._absent = frozenset()
            return []
        if not await self.store.caught_up():
            return []
        live = await self.members()
        if live is None:  # unknown, or the group is rebalancing: no verdict
            return []
        mine, self._absent = lost(
            self.store.running(),  # again: caught up, the store may hold newer states
            live=live,
            absent_before=self._absent,
            me=self.store.writer,
            owns=self.owns,
        )
        failed: list[str] = []
        for task in mine:
            why = f"replica {task.writer}, which ran the task, left the agent's group"
            if await self.store.fail(task.task_id, REASON, why):
                log.warning("task %s failed: %s", task.task_id, why)
                failed.append(task.task_id)
        self.failed += len(failed)
        return failed


class GroupMembers:
    """The instance names of a consumer group's members (:func:`client_id`), read with
    an ``AdminClient`` (the group's Describe right, which its Read grants)."""

    def __init__(self, kafka_config: Mapping[str, Any], group: str) -> None:
        self.kafka_config = dict(kafka_config)
        self.group = group
        self._admin: AdminClient | None = None
        """Made at the first scan that needs it: most scans find no task to judge."""

    async def __call__(self) -> frozenset[str] | None:
        """The members now; ``None`` when the group is not stable or cannot be described."""
        if self._admin is None:
            self._admin = AdminClient(self.kafka_config)
        futures = self._admin.describe_consumer_groups([self.group], request_timeout=10)
        try:
            description = await asyncio.to_thread(futures[self.group].result)
        except Exception as exc:
            log.warning("lost tasks: group %s not described: %s", self.group, exc)
            return None
        if description.state != ConsumerGroupState.STABLE:
            return None
        return frozenset(
            member.client_id.removeprefix(CLIENT_PREFIX)
            for member in description.members
            if member.client_id.startswith(CLIENT_PREFIX)
        )
