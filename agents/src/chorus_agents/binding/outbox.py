"""Records waiting for the agent's next Kafka transaction.

Anything that writes to Kafka on the agent's behalf while it processes input (answers,
stream events, task-store updates, audit records, dead letters) appends to the outbox;
only the server loop drains it, into the transaction that also commits the input
offsets. So every output is committed exactly when the input that caused it is, and
no coroutine ever touches the transactional producer between two transactions.

Not thread-safe: append from the event loop's thread only (every coroutine does).
"""

from __future__ import annotations

from collections.abc import Iterable

from chorus_agents.binding.codec import OutRecord


class Outbox:
    """A FIFO of records; :meth:`drain` takes them all, in the order they were appended."""

    def __init__(self) -> None:
        self._records: list[OutRecord] = []

    def append(self, record: OutRecord) -> None:
        """Queues ``record`` for the next transaction."""
        self._records.append(record)

    def extend(self, records: Iterable[OutRecord]) -> None:
        """Queues ``records``, in order."""
        self._records.extend(records)

    def drain(self) -> list[OutRecord]:
        """Every queued record, oldest first; the outbox is empty afterwards."""
        records, self._records = self._records, []
        return records

    def __len__(self) -> int:
        return len(self._records)
