"""The server side of the binding: the agent's inbox and subscribed topics, record by record.

The loop itself (polling, per-key lanes, the commit cycle, the invariant that a record's
outputs commit with the mark that it is done) is :mod:`.pipeline`'s; running one A2A
request on a2a-sdk's ``RequestHandler`` is :mod:`.requests`'. This module decodes each
record and says what it needs.

An A2A request is finished once it is accepted (:mod:`.requests`): long tasks do not hold
their partition back, their later events are committed by later commits, so a streamed
answer reaches the caller as it is produced, and a ``CancelTask`` is read while the task
runs. Records of one key (a conversation) start in order, each after the one before it
was accepted; the SDK then runs the messages of one task one at a time.

Records of the subscribed domain topics go to ``on_event`` (a code-defined agent's
:meth:`~chorus_agents.handler.Handler.on_event`), retried with backoff up to
``max_attempts`` times, then dead-lettered; one is finished once handled, so what the
handler publishes is committed with its offset. The writing itself (transactions, or
produce-flush-commit for at-least-once) is :class:`~.writer.OutputWriter`'s.

Poison (a record that is no valid A2A request, see :mod:`.codec`) goes to the
dead-letter topic with ``chorus-error-*`` headers, and when the record said where to
answer, the caller gets the matching JSON-RPC error, in the same transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types.a2a_pb2 import (
    AgentCard,
)
from a2a.utils.errors import InternalError
from chorus_api.topics import REPLIES_PATTERN
from confluent_kafka import KafkaError, KafkaException

from chorus_agents.binding import codec
from chorus_agents.binding.codec import OutRecord, PoisonRecord
from chorus_agents.binding.inputs import InputRecord, PipelineSettings, Work
from chorus_agents.binding.outbox import Outbox
from chorus_agents.binding.pipeline import Pipeline
from chorus_agents.binding.requests import Executions, RequestServer, SharedTasks
from chorus_agents.binding.writer import AUTHORIZATION_ERRORS, OutputWriter, TransactionFailed
from chorus_agents.handler import DomainEvent, domain_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    """What the loop needs besides its handler: names, limits and timings."""

    inbox: str
    """The topic of A2A requests."""
    agent: str
    """``<namespace>/<agent>``: the ``chorus-sender`` of answers, the dead letters' agent."""
    group_id: str
    """The agent's consumer group."""
    transactional_id: str | None
    """This replica's transactional id; ``None`` for at-least-once (no transactions)."""
    dead_letter: str | None
    """Where poison goes; ``None`` logs and drops it."""
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    """The loop's limits and timings: ``maxInFlight``, ``commitInterval``, ``handlerTimeout``."""
    max_record_bytes: int = 1024 * 1024
    commit_timeout: float = 30.0
    shutdown_grace: float = 10.0
    """Seconds running requests get to finish at shutdown."""
    auth_backoff: float = 5.0
    """Seconds the loop pauses after Kafka refused it access (never a hot retry loop)."""
    subscribe: tuple[str, ...] = ()
    """Domain event topics, handed to ``on_event``."""
    max_attempts: int = 3
    """Tries of ``on_event`` per record before it is dead-lettered."""
    retry_backoff: float = 0.2
    """Seconds before the first retry of ``on_event``; doubled each time, at most 10."""
    reply_to_pattern: str | None = REPLIES_PATTERN
    """Answers go only to topics matching it: a topic the agent may not write would fail
    its whole transaction. ``None`` accepts any topic name."""


@dataclass
class ServerStats:
    """Counters for metrics and tests."""

    records: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    poison: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    produced: int = 0
    buffered: int = 0
    """Input records taken and not finished (at the last commit)."""
    pauses: int = 0
    """Times the loop paused for lack of room."""
    last_kafka_error: str | None = None
    authorization_failed: bool = False


class KafkaA2AServer:
    """Serves A2A requests from the inbox with ``handler``; see the module docstring.

    ``kafka_config`` holds the librdkafka connection settings (bootstrap, security);
    the server adds what its consumer and producer need.
    """

    def __init__(
        self,
        handler: RequestHandler,
        outbox: Outbox,
        settings: ServerSettings,
        kafka_config: Mapping[str, Any],
        *,
        on_event: Callable[[DomainEvent], Awaitable[None]] | None = None,
        lean: bool = True,
        card: AgentCard | None = None,
        tasks: SharedTasks | None = None,
        executions: Executions | None = None,
    ) -> None:
        if settings.subscribe and on_event is None:
            raise ValueError(
                f"agent {settings.agent}: subscribes to {settings.subscribe} but has no on_event"
            )
        self.requests = RequestServer(
            handler,
            outbox,
            agent=settings.agent,
            lean=lean,
            card=card,
            tasks=tasks,
            executions=executions,
        )
        """Runs the inbox's requests (:mod:`.requests`)."""
        self.on_event = on_event
        self.outbox = outbox
        self.settings = settings
        self.stats = ServerStats()
        self.writer = OutputWriter(
            kafka_config,
            agent=settings.agent,
            transactional_id=settings.transactional_id,
            max_record_bytes=settings.max_record_bytes,
            commit_timeout=settings.commit_timeout,
        )
        self.pipeline = Pipeline(
            {
                **kafka_config,
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": "cooperative-sticky",
            },
            [settings.inbox, *settings.subscribe],
            self.writer,
            outbox,
            settings.pipeline,
            take=self._take,
            refused=self._refused,
            kafka_error=self._kafka_error,
        )
        self._started = asyncio.Event()
        self._stopped = False
        self._logged: dict[str, float] = {}

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Started, not stopped, and Kafka is not refusing access."""
        return self._started.is_set() and not self._stopped and not self.stats.authorization_failed

    @property
    def assigned(self) -> bool:  # hook: readiness (chorus_agents.health) needs the assignment
        """The consumer holds at least one partition of the inbox or a subscribed topic."""
        return bool(self.pipeline.partitions)

    async def wait_started(self) -> None:
        """Returns once the loop polls its inbox."""
        await self._started.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Serves until ``stop`` is set, then lets running work finish and commits."""
        await self.writer.open()
        self.pipeline.open()
        committer = asyncio.create_task(self._commit_every(stop), name="commit")
        try:
            self._started.set()
            while not stop.is_set() and not committer.done():
                taken = await self.pipeline.poll_once()
                if taken:
                    self.stats.authorization_failed = False
            await committer  # raises what stopped it; returns once stop is set
            await self.pipeline.finish_all(self.settings.shutdown_grace)
            await self.requests.aclose()
            await self._commit()
        finally:
            self._stopped = True
            if not committer.done():
                await asyncio.wait([committer])
            await self.pipeline.close()
            await self.writer.close()

    async def _commit_every(self, stop: asyncio.Event) -> None:
        """The commit cycle: never cancelled mid-transaction, it ends when ``stop`` is set."""
        interval = self.settings.pipeline.commit_interval
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            await self._commit()

    async def _commit(self) -> None:
        try:
            await self.pipeline.commit()
        except TransactionFailed as failed:
            self.stats.authorization_failed |= failed.authorization
            raise
        self.stats.transactions = self.writer.transactions
        self.stats.produced = self.writer.produced
        self.stats.buffered = self.pipeline.buffered
        self.stats.pauses = self.pipeline.paused_times

    # --- taking records -------------------------------------------------------------------

    def _take(self, record: InputRecord) -> Work | None:
        """Decodes one record: its work, or ``None`` for poison (dead-lettered here)."""
        message, topic = record.message, record.topic
        key, value, headers = record.key, message.value(), message.headers()
        self.stats.records += 1
        if topic != self.settings.inbox:
            event = domain_event(
                topic, key, value, headers, partition=record.partition, offset=record.offset
            )
            return partial(self._handle_event, event)
        try:
            request = codec.decode_request(
                value, headers, key=key, max_bytes=self.settings.max_record_bytes
            )
            pattern = self.settings.reply_to_pattern
            if pattern is not None and re.fullmatch(pattern, request.route.reply_to) is None:
                raise codec.InvalidHeader(
                    f"{codec.REPLY_TO} {request.route.reply_to!r} is not a replies topic "
                    "(chorus.<namespace>.a2a.<agent>.replies)"
                )
        except PoisonRecord as poison:
            self._poison(poison, record)
            return None
        self.stats.requests[request.method] += 1
        return partial(self.requests.serve, request)

    def _refused(self, record: InputRecord, reason: str, why: str) -> list[OutRecord]:
        """What a record that failed as a whole leaves: its dead letter, and for a request
        that said where to answer, the error its caller gets."""
        message = record.message
        outputs = self._dead_letter(record, reason, why)
        if record.topic == self.settings.inbox:
            with contextlib.suppress(PoisonRecord):
                request = codec.decode_request(
                    message.value(),
                    message.headers(),
                    key=record.key,
                    max_bytes=len(message.value() or b""),
                )
                outputs.append(
                    codec.encode_response(
                        request.route,
                        sender=self.settings.agent,
                        seq=0,
                        end=True,
                        error=InternalError(message=f"{reason}: {why}"),
                    )
                )
        return outputs

    async def _handle_event(self, event: DomainEvent, record: InputRecord) -> None:
        """Runs ``on_event``, retrying with backoff; dead-letters the record after the last try.

        The record is finished once this returns, so what the handler publishes is
        committed with it. A failed try's outputs are dropped before the next.
        """
        assert self.on_event is not None
        assert record.scope is not None
        self.stats.requests[f"event:{event.topic}"] += 1
        delay = self.settings.retry_backoff
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                await self.on_event(event)
                return
            except Exception as exc:
                record.scope.records.clear()
                log.warning(
                    "agent %s: event %s[%d]@%d failed (attempt %d of %d): %s",
                    self.settings.agent,
                    event.topic,
                    event.partition,
                    event.offset,
                    attempt,
                    self.settings.max_attempts,
                    exc,
                )
                if attempt == self.settings.max_attempts:
                    why = f"{self.settings.max_attempts} attempts; last: {exc!r}"
                    self.outbox.extend(self._dead_letter(record, "handler-failed", why))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _dead_letter(self, record: InputRecord, reason: str, why: str) -> list[OutRecord]:
        """The record, unchanged, for the dead-letter topic with the reason (none when the
        agent has no dead-letter topic: it is counted and logged only)."""
        self.stats.poison[reason] += 1
        if self.settings.dead_letter is None:
            return []
        message = record.message
        return [
            codec.dead_letter_record(
                self.settings.dead_letter,
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=message.value(),
                headers=message.headers(),
                reason=reason,
                message=why,
                agent=self.settings.agent,
            )
        ]

    def _poison(self, poison: PoisonRecord, record: InputRecord) -> None:
        log.warning(
            "agent %s: poison record %s (%s): %s",
            self.settings.agent,
            record.where,
            poison.reason,
            poison.message,
        )
        self.outbox.extend(self._dead_letter(record, poison.reason, poison.message))
        if poison.route is not None:
            self.outbox.append(
                codec.encode_response(
                    poison.route,
                    sender=self.settings.agent,
                    seq=0,
                    end=True,
                    error=poison.a2a_error(),
                )
            )

    # --- Kafka ------------------------------------------------------------------------------

    async def _kafka_error(self, error: KafkaError) -> None:
        self.stats.last_kafka_error = str(error)
        if error.code() in AUTHORIZATION_ERRORS:
            if not self.stats.authorization_failed:
                log.error(
                    "agent %s: Kafka refused access (%s): check the KafkaUser ACLs: %s, group %s%s",
                    self.settings.agent,
                    error.str(),
                    self.settings.inbox,
                    self.settings.group_id,
                    f", transactional id {self.settings.transactional_id}"
                    if self.settings.transactional_id
                    else "",
                )
            self.stats.authorization_failed = True
            await asyncio.sleep(self.settings.auth_backoff)
        elif error.fatal():
            raise KafkaException(error)
        else:
            # Repeated errors (a subscribed topic that does not exist yet) are logged once a
            # minute and slow the loop down, instead of flooding the log every poll.
            now, text = time.monotonic(), error.str()
            if now - self._logged.get(text, -60.0) >= 60.0:
                self._logged[text] = now
                log.warning("agent %s: Kafka: %s", self.settings.agent, text)
            if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                await asyncio.sleep(1.0)
