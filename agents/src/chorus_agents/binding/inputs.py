"""What the loop works on: its settings, and an input record on its way to being done.

Split from :mod:`.pipeline` (the loop itself), which, with :mod:`.server`, is their user.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from chorus_agents.binding.ledger import PartitionLedger
from chorus_agents.binding.outbox import Scope


@dataclass(frozen=True)
class PipelineSettings:
    """The loop's limits and timings (the Agent's ``delivery``, see docs/runtime.md)."""

    max_batch: int = 100
    """Most records taken per poll."""
    max_in_flight: int = 64
    """Most records worked on at once (across keys)."""
    max_buffered: int = 0
    """Most records taken and not finished; 0: four times ``max_in_flight``."""
    commit_interval: float = 0.1
    """Seconds between transactions."""
    handler_timeout: float = 600.0
    """Seconds a record may take until it is finished; then it is dead-lettered."""
    poll_timeout: float = 0.1
    """Seconds a poll waits for a record: how soon a pause, a resume or a stop is seen."""

    @property
    def buffered_limit(self) -> int:
        return self.max_buffered or 4 * self.max_in_flight


Work = Callable[["InputRecord"], Coroutine[Any, Any, None]]
"""Processes a record; resolves ``record.finished`` once its outputs are complete (when
it returns, at the latest). It runs in the record's scope."""


@dataclass(eq=False)
class InputRecord:
    """One polled record on its way to being done."""

    message: Any
    topic: str
    partition: int
    offset: int
    key: bytes | None
    ledger: PartitionLedger
    finished: asyncio.Future[None]
    """Resolved by the work (or when it returns): the record's outputs are complete."""
    work: Work | None = field(default=None, repr=False)
    """Set while the record waits in its lane for the one before it."""
    scope: Scope | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    """The work, running (an accepted request goes on after its record is finished)."""
    failed: bool = False
    """The record failed as a whole (timeout, outputs refused); its work was cancelled."""
    abandoned: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"
