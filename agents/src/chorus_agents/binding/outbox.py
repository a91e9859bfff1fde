"""Records waiting for the agent's next Kafka transaction, each held by what caused it.

Anything that writes to Kafka on the agent's behalf (answers, stream events, task-store
updates, audit records, dead letters) appends to the outbox; only the server loop
drains it, into a transaction that also commits input offsets. No coroutine ever touches
the transactional producer itself.

What a handler writes while it processes an input record belongs to that record: the
server opens a :class:`Scope` for the record (:meth:`Outbox.scope`), and every append
made in its asyncio context (tasks the handler starts included) is held there until
the record is finished. Then the server checks the record's outputs and releases them
into the transaction that marks the record done, or drops them all if one cannot be
written. A record that is abandoned (its partition revoked, the process stopping) takes
its outputs with it, and whoever runs it again writes them again, once.

Appends outside a record's scope, or after it closed (a task's later states, the
HTTP gateway's task writes, the AgentCard), go straight to the next transaction.

Not thread-safe: append from the event loop's thread only (every coroutine does).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable

from chorus_agents.binding.codec import OutRecord

_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "chorus_outbox_scope", default=None
)


class Scope:
    """The outputs of one input record, held until it is finished; see the module docstring."""

    def __init__(self, source: tuple[str, int] | None = None) -> None:
        self.records: list[OutRecord] = []
        self.open = True
        self.source = source
        """The input record's topic and partition (what a task it starts came from)."""

    def close(self) -> list[OutRecord]:
        """Ends the scope (later appends go to the outbox itself); returns what it held."""
        self.open = False
        records, self.records = self.records, []
        return records


class Outbox:
    """A FIFO of records; :meth:`drain` takes them all, in the order they were appended."""

    def __init__(self) -> None:
        self._records: list[OutRecord] = []
        self._loose: set[int] = set()
        """Ids of the queued records appended outside any record's scope."""

    def scope(self, source: tuple[str, int] | None = None) -> Scope:
        """Holds what the current asyncio context appends from now on (call it first thing
        in the task that processes a record from ``source``, its topic and partition: the
        tasks it starts inherit the scope)."""
        scope = Scope(source)
        _SCOPE.set(scope)
        return scope

    @staticmethod
    def source() -> tuple[str, int] | None:
        """The topic and partition of the input record the current context works for
        (also after the record is finished: a task's later states), or ``None``."""
        scope = _SCOPE.get()
        return scope.source if scope is not None else None

    def append(self, record: OutRecord) -> None:
        """Queues ``record`` with its record's outputs, or for the next transaction."""
        scope = _SCOPE.get()
        if scope is not None and scope.open:
            scope.records.append(record)
        else:
            self._loose.add(id(record))
            self._records.append(record)

    def extend(self, records: Iterable[OutRecord]) -> None:
        """Queues ``records``, in order."""
        for record in records:
            self.append(record)

    def release(self, records: Iterable[OutRecord], *, loose: bool = False) -> None:
        """Queues a finished record's outputs for the next transaction; with ``loose``,
        outputs no input record holds (an HTTP request's): written again if their
        transaction is aborted, never dropped."""
        records = list(records)
        if loose:
            self._loose.update(id(r) for r in records)
        self._records.extend(records)

    def drain(self) -> list[OutRecord]:
        """Every queued record, oldest first; the outbox is empty afterwards."""
        records, self._records = self._records, []
        self._loose = set()  # a new set: drain_loose still reads the old one
        return records

    def drain_loose(self) -> tuple[list[OutRecord], list[OutRecord]]:
        """:meth:`drain`, and which of those records no input record holds (a task's later
        states, the card): what must be written again if their transaction is aborted
        (the other records' inputs run again, and write them again)."""
        loose = self._loose
        records = self.drain()
        return records, [r for r in records if id(r) in loose]

    def drop_held(self) -> int:
        """Drops the queued records that finished input records released, keeping the
        loose ones; returns how many it dropped. After an aborted transaction the loop
        runs those inputs again: their outputs must not be written meanwhile."""
        kept = [record for record in self._records if id(record) in self._loose]
        dropped = len(self._records) - len(kept)
        self._records = kept
        return dropped

    def requeue(self, records: Iterable[OutRecord]) -> None:
        """Puts ``records`` (loose ones whose transaction was aborted) first in the queue."""
        records = list(records)
        self._loose.update(id(r) for r in records)
        self._records[:0] = records

    def __len__(self) -> int:
        return len(self._records)
