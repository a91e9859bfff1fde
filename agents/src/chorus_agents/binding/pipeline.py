"""The agent's input loop: continuous polling, per-key lanes, a commit cycle.

```
poll ──► ledger.take ──► lane (topic, key) ──► slot (max_in_flight) ──► work
  ▲  pause when max_buffered                                              │ finished
  │  records are taken, or a                                              ▼
  │  partition's metadata is full              check outputs ─► outbox ─► ledger.finish
  └──────────────────────────────  every commit_interval: one transaction ◄┘
                                   (outputs of finished records + offsets and metadata)
```

- **Polling never waits for handlers.** A record goes to its lane, the records of one
  topic and key, which runs them one after the other (no timeout breaks that order);
  records of other keys run beside it, up to ``max_in_flight`` at once. When
  ``max_buffered`` records are taken and not finished, the loop pauses its partitions
  and keeps polling (so it stays in the group) until there is room.
- **A record's outputs are its own.** The work runs in an :class:`~.outbox.Scope`: what
  it appends is held until it finishes, then checked (:meth:`~.writer.OutputWriter.refusal`):
  an output that cannot be written fails only its record, which goes to the dead-letter
  topic with the reason, while the rest of the transaction commits.
- **The invariant.** Every ``commit_interval`` one transaction (:class:`~.writer.OutputWriter`)
  holds the outputs of the records finished since the last, and each partition's
  offset with the finished offsets beyond it as metadata (:mod:`.ledger`). So a record's
  outputs are committed exactly once, in the transaction that marks it done, however
  long the records before it run.
- **Timeouts.** A record not finished after ``handler_timeout`` is cancelled and
  dead-lettered with the reason ``timeout``; nothing is committed silently.
- **Rebalances** (cooperative-sticky): when partitions are revoked, what finished is
  committed first, then their unfinished records are abandoned (cancelled, outputs
  dropped) for the new owner to run. Lost partitions are abandoned without a commit.

What "finished" means is the work's: an event is finished when handled, an A2A request
when it is accepted (its task is stored); a request's later states are written as they
happen, outside its scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from chorus_agents.binding.codec import OutRecord
from chorus_agents.binding.inputs import InputRecord, PipelineSettings, Work
from chorus_agents.binding.ledger import PartitionLedger, decode
from chorus_agents.binding.outbox import Outbox, Scope
from chorus_agents.binding.writer import OutputWriter, TransactionFailed

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class Pipeline:
    """Runs the loop for ``take``; see the module docstring.

    ``take`` decides what a record needs: a :data:`Work`, or ``None`` when it is done
    already (poison the caller dead-lettered). ``refused`` makes the outputs of a record
    whose own outputs cannot be written (a dead letter, an error answer).
    """

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        topics: list[str],
        writer: OutputWriter,
        outbox: Outbox,
        settings: PipelineSettings,
        *,
        take: Callable[[InputRecord], Work | None],
        refused: Callable[[InputRecord, str, str], list[OutRecord]],
        kafka_error: Callable[[KafkaError], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.outbox = outbox
        self._consumer_config = dict(consumer_config)
        self._topics = topics
        self._take = take
        self._refused = refused
        self._kafka_error = kafka_error
        self.consumer: Consumer | None = None
        self.ledgers: dict[Partition, PartitionLedger] = {}
        self._taken: dict[Partition, dict[int, InputRecord]] = {}
        self._lanes: dict[tuple[str, bytes], deque[InputRecord]] = {}
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._commit_lock = asyncio.Lock()
        self._paused: set[Partition] = set()
        self._revoking: set[Partition] = set()
        """Partitions being given up: their last commit is on its way, so a record of
        theirs that finishes now is abandoned (the new owner runs it), never left with
        outputs in the outbox and no offset to commit them with."""
        self._waiters: list[asyncio.Future[None]] = []
        self._group: Any = None
        """The consumer's group metadata (generation, member), taken on the poll thread at
        every rebalance: the event loop's thread never asks the consumer for it."""
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resetting = False
        self.resets = 0
        """How often a rebalance aborted a commit and the loop went back to the offsets."""
        self.paused_times = 0
        """How often the loop paused for lack of room (metrics, tests)."""

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Records taken and not finished."""
        return sum(len(records) for records in self._taken.values())

    @property
    def partitions(self) -> set[Partition]:
        """The partitions this loop holds now (what ``assignment()`` would say, without
        asking the consumer from the event loop's thread)."""
        return set(self.ledgers)

    @property
    def running(self) -> int:
        """Work tasks alive (an accepted request's included)."""
        return len(self._running)

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.consumer = Consumer(self._consumer_config)
        self.consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    async def poll_once(self) -> int:
        """One poll (pausing or resuming first); returns how many records it took."""
        consumer = self.consumer
        assert consumer is not None
        if self._resetting:
            self._resetting = False
            await self._assigned(await asyncio.to_thread(self._rewind, consumer))
        self._apply_pauses()
        room = self.settings.buffered_limit - self.buffered
        # Full, every partition is paused and a poll serves rebalances and liveness; a
        # record it still returns (a partition assigned meanwhile) is taken all the same.
        capacity = min(self.settings.max_batch, max(room, 1))
        timeout = self.settings.poll_timeout
        messages = await asyncio.to_thread(self._poll_batch, consumer, capacity, timeout)
        taken = 0
        for message in messages:
            error = message.error()
            if error is not None:
                await self._kafka_error(error)
                continue
            taken += self._accept(message)
        return taken

    async def commit(self) -> int:
        """Writes what finished since the last commit; returns the records written."""
        consumer = self.consumer
        assert consumer is not None
        async with self._commit_lock:
            offsets: dict[Partition, tuple[int, str]] = {}
            records, loose = self.outbox.drain_loose()
            waiters, self._waiters = self._waiters, []
            for partition, ledger in self.ledgers.items():
                if ledger.dirty:
                    point = ledger.commit_point()
                    if point is not None:
                        offsets[partition] = point
            try:
                if records or offsets:
                    await self.writer.write(records, offsets, consumer, self._group)
            except BaseException as exc:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(RuntimeError(f"the commit failed: {exc}"))
                if isinstance(exc, TransactionFailed) and exc.recoverable:
                    self._reset(loose, exc)
                    return 0
                raise
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return len(records)

    def _reset(self, loose: list[OutRecord], failed: TransactionFailed) -> None:
        """After a transaction aborted by a rebalance, or by a topic Kafka refused (whose
        records fail alone when they run again): what it marked done is not, so every
        unfinished record is abandoned and the next poll starts again from the committed
        offsets and their metadata (as Kafka Streams does when a task migrated). Records
        no input holds are queued again."""
        log.warning("%s; running again from the committed offsets", failed)
        # Records that finished while the transaction failed released their outputs
        # after it was drained: their inputs run again too, so those go.
        self.outbox.drop_held()
        self.outbox.requeue(loose)
        self._abandon(set(self._taken))
        self.ledgers.clear()
        self._paused.clear()
        self._lanes.clear()
        self._resetting = True
        self.resets += 1

    def _rewind(self, consumer: Consumer) -> list[TopicPartition]:
        """On the poll thread: seeks every assigned partition to its committed offset;
        returns the committed offsets (with metadata) for new ledgers."""
        assignment = consumer.assignment()
        if not assignment:
            return []
        committed = consumer.committed(assignment, timeout=30)
        consumer.resume(assignment)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        return committed

    async def finish_all(self, grace: float) -> None:
        """At shutdown: lets running work finish for up to ``grace`` seconds, commits, then
        abandons what is left (its records are run again by whoever polls them next)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.buffered and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await self.commit()
        self._abandon(set(self._taken))
        running = list(self._running)
        remaining = deadline - loop.time()
        if running and remaining > 0:
            await asyncio.wait(running, timeout=remaining)
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        await self.commit()

    async def close(self) -> None:
        if self.consumer is not None:
            # Closing revokes the partitions: the callback commits what finished, with
            # this consumer, so it stays set until the close returns.
            await asyncio.to_thread(self.consumer.close)
            self.consumer = None

    # --- taking records ---------------------------------------------------------------------

    def _poll_batch(self, consumer: Consumer, capacity: int, timeout: float) -> list[Any]:
        """Waits up to ``timeout`` for a record, then takes what else is already fetched
        (``consume(n, timeout)`` alone would wait for ``n`` records or the whole timeout).
        On the poll thread: takes the group metadata fresh for the next commit."""
        first = consumer.poll(timeout)
        self._group = consumer.consumer_group_metadata()
        if first is None:
            return []
        if capacity == 1:
            return [first]
        return [first, *consumer.consume(capacity - 1, 0)]

    def _accept(self, message: Any) -> int:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        ledger = self.ledgers.get((topic, partition))
        if ledger is None:  # from a partition revoked since it was fetched
            return 0
        if not ledger.take(offset):
            log.info(
                "%s[%d]@%d was finished by the previous owner: skipped", topic, partition, offset
            )
            return 0
        record = InputRecord(
            message=message,
            topic=topic,
            partition=partition,
            offset=offset,
            key=message.key(),
            ledger=ledger,
            finished=asyncio.get_running_loop().create_future(),
        )
        try:
            work = self._take(record)
        except Exception as exc:  # a bug must cost one record, not the agent
            log.exception("cannot take %s", record.where)
            self.outbox.release(self._refused(record, "internal-error", repr(exc)))
            work = None
        if work is None:
            ledger.finish(offset)
            return 1
        self._taken.setdefault((topic, partition), {})[offset] = record
        if record.key is None:
            self._start(record, work)
            return 1
        lane = self._lanes.setdefault((topic, record.key), deque())
        lane.append(record)
        if len(lane) == 1:
            self._start(record, work)
        else:
            record.work = work  # started when the record before it is finished
        return 1

    def _start(self, record: InputRecord, work: Work) -> None:
        task = asyncio.create_task(self._run(record, work), name=f"record:{record.where}")
        record.task = task
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, record: InputRecord, work: Work) -> None:
        async with self._slots:
            if record.abandoned:
                return
            record.scope = self.outbox.scope((record.topic, record.partition))
            runner = asyncio.create_task(work(record), name=f"work:{record.where}")
            record.runner = runner
            try:
                done, _ = await asyncio.wait(
                    {runner, record.finished},
                    timeout=self.settings.handler_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    await self._fail(
                        record,
                        "timeout",
                        f"not finished after handlerTimeout ({self.settings.handler_timeout:g}s)",
                    )
                elif runner in done and not record.finished.done() and _failed(runner):
                    await self._fail(record, "internal-error", _failed(runner))
                else:
                    await self._finish(record)
                # The slot is held while the work runs: an accepted request goes on.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
            finally:
                if record.abandoned and not runner.done():
                    runner.cancel()

    async def check(self, scope: Scope) -> tuple[str, str] | None:
        """Why ``scope``'s outputs cannot be written, or ``None``; what is appended while
        the check runs is checked too, so closing the scope right after loses nothing."""
        while True:
            pending = list(scope.records)
            refusal = await self.writer.refusal(pending)
            if refusal is not None or len(scope.records) == len(pending):
                return refusal

    def committed(self) -> asyncio.Future[None]:
        """Resolved once a commit made after this call succeeded (it holds everything the
        outbox has now); failed with the commit's error."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    async def _finish(self, record: InputRecord) -> None:
        scope = record.scope
        assert scope is not None
        refusal = await self.check(scope)
        if refusal is not None:
            await self._fail(record, *refusal)
            return
        self._done(record, scope.close())

    async def _fail(self, record: InputRecord, reason: str, why: str) -> None:
        log.warning("record %s failed (%s): %s", record.where, reason, why)
        record.failed = True
        if record.scope is not None:
            record.scope.close()  # its outputs are dropped
        if record.runner is not None and not record.runner.done():
            record.runner.cancel()
        self._done(record, self._refused(record, reason, why))

    def _done(self, record: InputRecord, outputs: list[OutRecord]) -> None:
        """Releases ``outputs`` and marks the record finished, in the same instant (no
        commit can fall between them), then starts the next record of its lane."""
        if record.abandoned:
            return
        if (record.topic, record.partition) in self._revoking:
            self._taken.get((record.topic, record.partition), {}).pop(record.offset, None)
            self._drop(record)
            return
        if not record.finished.done():
            record.finished.set_result(None)
        self.outbox.release(outputs)
        record.ledger.finish(record.offset)
        taken = self._taken.get((record.topic, record.partition), {})
        taken.pop(record.offset, None)
        if record.key is None:
            return
        lane = self._lanes.get((record.topic, record.key))
        if not lane or lane[0] is not record:
            return
        lane.popleft()
        if lane:
            following = lane[0]
            work, following.work = following.work, None
            assert work is not None
            self._start(following, work)
        else:
            del self._lanes[(record.topic, record.key)]

    # --- pausing ------------------------------------------------------------------------------

    def _apply_pauses(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        full = self.buffered >= self.settings.buffered_limit
        wanted = {p for p, ledger in self.ledgers.items() if full or ledger.full}
        if wanted - self._paused:
            consumer.pause([TopicPartition(t, p) for t, p in wanted - self._paused])
            if full:
                self.paused_times += 1
        if self._paused - wanted:
            consumer.resume([TopicPartition(t, p) for t, p in self._paused - wanted])
        self._paused = wanted

    # --- rebalances (called on the poll thread, run on the event loop) ------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._group = consumer.consumer_group_metadata()
        committed = consumer.committed(partitions, timeout=30) if partitions else []
        self._call(self._assigned(committed))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._group = consumer.consumer_group_metadata()
        # At least once, whatever the new owner runs again is allowed: no commit here
        # (a consumer commit from another thread could wait for this very rebalance).
        self._call(self._revoked(partitions, commit=self.writer.transactional))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._call(self._revoked(partitions, commit=False))

    def _call(self, coroutine: Any) -> None:
        """Runs ``coroutine`` on the event loop and waits for it. The loop's thread must
        never call a consumer method that waits for the group (``assignment()``): this
        thread holds the rebalance until the loop answers."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _assigned(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            base = tp.offset if tp.offset >= 0 else None
            try:
                skip = decode(base, tp.metadata) if base is not None else frozenset()
            except ValueError as exc:  # never seen unless something else wrote it
                log.error(
                    "%s[%d]: %s; its records from %s run again", tp.topic, tp.partition, exc, base
                )
                skip = frozenset()
            if skip:
                log.info(
                    "%s[%d]: %d record(s) beyond offset %d are done already",
                    tp.topic,
                    tp.partition,
                    len(skip),
                    base,
                )
            self.ledgers[(tp.topic, tp.partition)] = PartitionLedger(base=base, skip=set(skip))

    async def _revoked(self, partitions: list[TopicPartition], *, commit: bool) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._revoking |= gone
        try:
            if commit:
                try:
                    await self.commit()
                except Exception as exc:  # the new owner runs what this could not commit
                    log.warning(
                        "commit before giving up %d partition(s) failed: %r", len(gone), exc
                    )
            self._abandon(gone)
        finally:
            self._revoking -= gone
        for partition in gone:
            self.ledgers.pop(partition, None)
            self._paused.discard(partition)

    def _abandon(self, partitions: set[Partition]) -> None:
        """Drops the unfinished records of ``partitions``: cancelled, outputs dropped."""
        for partition in partitions:
            for record in self._taken.pop(partition, {}).values():
                self._drop(record)

    def _drop(self, record: InputRecord) -> None:
        """Abandons one record: cancelled, its outputs dropped, its lane gone."""
        record.abandoned = True
        if record.scope is not None:
            record.scope.close()
        if record.task is not None:
            record.task.cancel()
        if record.key is not None:
            self._lanes.pop((record.topic, record.key), None)


def _failed(task: asyncio.Task[None]) -> str:
    """Why ``task`` (done) failed, or an empty string."""
    if task.cancelled():
        return "cancelled"
    exception = task.exception()
    return repr(exception) if exception is not None else ""
