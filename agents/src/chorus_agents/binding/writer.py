"""Writing a commit's output: the outbox's records and the input offsets, together.

Exactly-once (a transactional id is set): one Kafka transaction per :meth:`OutputWriter.write`
holding the records and, through ``send_offsets_to_transaction``, the consumer group's
offsets with their metadata (:mod:`.ledger`). At-least-once (no transactional id):
produce, flush, then commit the offsets.

An output that could never be written (larger than a record may be, or to a topic that
does not exist or that the agent may not see) would fail the whole transaction, and so
every record in it. :meth:`OutputWriter.refusal` finds it while its record can still fail
alone; a record from outside any input's scope that is too large is dropped with an error
in the log, for the same reason.

A write that fails raises :class:`TransactionFailed` after aborting what can be aborted;
the caller stops (the process restarts and rebuilds its state from Kafka). Retriable
commit errors are retried here first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented, not re-exported
    AclOperation,
    AdminClient,
)

from chorus_agents.binding.codec import OutRecord

log = logging.getLogger(__name__)

PRODUCER_ONLY = frozenset(
    {"enable.idempotence", "linger.ms", "transactional.id", "transaction.timeout.ms"}
)
"""Settings of the writer's producer that its admin client (ACL checks) does not take."""

AUTHORIZATION_ERRORS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    }
)
"""Kafka refusing access: reported clearly, never retried hot."""

REBALANCED = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
    }
)
"""The consumer group moved on between taking its metadata and committing offsets."""


class TransactionFailed(RuntimeError):
    """A write could not be committed; the loop stops (the process should restart).

    In-memory state (running tasks, the task store) may now be ahead of Kafka; a
    restart rebuilds it from Kafka, which is the only consistent recovery.
    ``authorization`` is set when Kafka refused access.
    """

    def __init__(
        self,
        message: str,
        *,
        authorization: bool = False,
        rebalanced: bool = False,
        refused: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.authorization = authorization
        self.rebalanced = rebalanced
        """The group moved on while the offsets were sent (a rebalance): the transaction
        was aborted and the producer goes on; the loop resets to the committed offsets."""
        self.refused = refused
        """Topics Kafka refused this agent's writes to, when the transaction was aborted
        and the producer goes on: the loop resets, and a record that writes to one of
        them fails alone (``output-refused``) when it runs again."""

    @property
    def recoverable(self) -> bool:
        """Aborted cleanly: the loop resets to the committed offsets and goes on."""
        return self.rebalanced or bool(self.refused)


class OutputWriter:
    """The agent's producer; see the module docstring."""

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        *,
        agent: str,
        transactional_id: str | None,
        max_record_bytes: int,
        max_output_bytes: int = 1_000_000,
        transaction_timeout: float = 8.0,
        commit_timeout: float = 30.0,
    ) -> None:
        self.agent = agent
        # ``transaction_timeout``: a transaction spans one commit (milliseconds), so this
        # only bounds how long a killed replica's open transaction holds read_committed
        # readers back when its replacement has another transactional id.
        self.max_output_bytes = max_output_bytes
        """The largest record written: below the broker's default ``message.max.bytes``
        (1,048,588) with room for the batch's own overhead."""
        self.dropped = 0
        """Records from outside an input's scope that could not be written (logged)."""
        self._writable: set[str] = set()
        self._refused_topics: dict[str, str] = {}
        """Topics Kafka refused a write to (described, but not writable by this agent):
        what it said."""
        self.transactional = transactional_id is not None
        self.transactions = 0
        self.produced = 0
        self._timeout = commit_timeout
        self._errors: list[str] = []
        self._refused = False
        """A delivery of the current write failed because Kafka refused access."""
        self._refused_now: set[str] = set()
        """The topics whose deliveries in the current write Kafka refused."""
        self._topics_now: set[str] = set()
        """The topics of the current write."""
        self._config: dict[str, Any] = {
            **kafka_config,
            "enable.idempotence": True,
            "linger.ms": 2,
            # Dead letters carry records as large as the broker took: leave them room.
            "message.max.bytes": max(2 * max_record_bytes, 2 * 1024 * 1024),
        }
        if transactional_id is not None:
            self._config["transactional.id"] = transactional_id
            self._config["transaction.timeout.ms"] = int(transaction_timeout * 1000)
        self._producer: Producer | None = None
        self._admin: AdminClient | None = None

    async def open(self) -> None:
        """Creates the producer; with a transactional id, fences its previous incarnation."""
        self._producer = Producer(self._config)
        # one admin client, made here: threads checking topics at once share it
        self._admin = AdminClient({k: v for k, v in self._config.items() if k not in PRODUCER_ONLY})
        if self.transactional:
            await asyncio.to_thread(self._producer.init_transactions, self._timeout)

    async def close(self) -> None:
        """Delivers what is queued and lets the producer go."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.to_thread(producer.flush, 5.0)

    async def refusal(self, records: Sequence[OutRecord]) -> tuple[str, str] | None:
        """Why ``records`` cannot be written, as ``(reason, message)``; ``None`` if they can.

        Topics are looked up once each (metadata) and remembered when writable.
        """
        for record in records:
            too_large = self._too_large(record)
            if too_large is not None:
                return "output-too-large", too_large
        for topic in sorted({r.topic for r in records} & set(self._refused_topics)):
            return "output-refused", f"{topic}: {self._refused_topics[topic]}"
        for topic in sorted({r.topic for r in records} - self._writable):
            problem = await asyncio.to_thread(self._topic_problem, topic)
            if problem is not None:
                return "output-refused", f"{topic}: {problem}"
            self._writable.add(topic)
        return None

    def _topic_problem(self, topic: str) -> str | None:
        assert self._producer is not None, "not open"
        try:
            metadata = self._producer.list_topics(topic, timeout=self._timeout)
        except KafkaException as exc:
            return f"no metadata: {exc}"
        found = metadata.topics.get(topic)
        if found is None:
            return "not in the cluster's metadata"
        if found.error is not None:
            return str(found.error.str())
        return self._write_refused(topic)

    def _write_refused(self, topic: str) -> str | None:
        """Why Kafka would refuse this agent's writes to ``topic`` (its ACLs let it
        describe the topic, not write it), or ``None``; blocking. A broker without an
        authorizer, or one that does not say, lets it write."""
        assert self._admin is not None, "not open"
        futures = self._admin.describe_topics(
            TopicCollection([topic]),
            include_authorized_operations=True,
            request_timeout=self._timeout,
        )
        try:
            operations = futures[topic].result().authorized_operations
        except KafkaException as exc:
            # its metadata was read: most likely passing; if the write is refused, the
            # transaction says so and the topic is looked at again
            log.warning("agent %s: %s: rights not described: %s", self.agent, topic, exc)
            return None
        if operations is None or {AclOperation.WRITE, AclOperation.ALL} & set(operations):
            return None
        allowed = ", ".join(sorted(op.name for op in operations)) or "nothing"
        return f"this agent may not write it (its ACLs allow: {allowed})"

    def _too_large(self, record: OutRecord) -> str | None:
        """Why ``record`` is too large to write, or ``None``."""
        size = record_size(record)
        if size <= self.max_output_bytes:
            return None
        return (
            f"a record to {record.topic} has {size} bytes, over the "
            f"{self.max_output_bytes} a record may have"
        )

    def _writable_only(self, records: Sequence[OutRecord]) -> list[OutRecord]:
        kept = []
        for record in records:
            too_large = self._too_large(record)
            if too_large is None and record.topic in self._refused_topics:
                too_large = f"{record.topic}: {self._refused_topics[record.topic]}"
            if too_large is not None:
                self.dropped += 1
                log.error(
                    "agent %s: %s: dropped (the rest of the transaction commits)",
                    self.agent,
                    too_large,
                )
                continue
            kept.append(record)
        return kept

    async def write(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[tuple[str, int], tuple[int, str]],
        consumer: Consumer,
        group: Any = None,
    ) -> None:
        """Writes ``records`` and commits ``offsets`` (per topic and partition: the next
        offset and its metadata). ``group`` is the consumer's group metadata, taken on the
        thread that polls (calling the consumer from here can wait for a rebalance that
        waits for this write); required with offsets in a transaction."""
        assert self._producer is not None, "not open"
        producer = self._producer
        records = self._writable_only(records)
        positions = [TopicPartition(t, p, o, metadata=m) for (t, p), (o, m) in offsets.items()]
        if not self.transactional:
            self._produce_all(producer, records)
            remaining = await asyncio.to_thread(producer.flush, self._timeout)
            if remaining or self._errors:
                refused = self._remember_refused() if not remaining else frozenset()
                raise TransactionFailed(
                    f"agent {self.agent}: not delivered: {self._errors[:3]}",
                    authorization=self._refused,
                    refused=refused,
                )
            if positions:
                await asyncio.to_thread(consumer.commit, offsets=positions, asynchronous=False)
            self.produced += len(records)
            return
        try:
            producer.begin_transaction()
            self._produce_all(producer, records)
            if positions:
                assert group is not None, "offsets in a transaction need the group metadata"
                await asyncio.to_thread(
                    producer.send_offsets_to_transaction, positions, group, self._timeout
                )
            await self._commit(producer)
        except KafkaException as exc:
            await self._abort(producer, exc)
        self.transactions += 1
        self.produced += len(records)

    def _produce_all(self, producer: Producer, records: Sequence[OutRecord]) -> None:
        self._errors.clear()
        self._refused = False
        self._refused_now = set()
        self._topics_now = {record.topic for record in records}
        for record in records:
            while True:
                try:
                    producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers),
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._errors.append(f"{message.topic()}: {error.str()}")
            self._refused |= error.code() in AUTHORIZATION_ERRORS
            if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                self._refused_now.add(message.topic())

    async def _commit(self, producer: Producer) -> None:
        while True:
            try:
                await asyncio.to_thread(producer.commit_transaction, self._timeout)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if (
                    isinstance(error, KafkaError)
                    and error.retriable()
                    and not error.txn_requires_abort()
                ):
                    log.warning("agent %s: commit retried: %s", self.agent, error.str())
                    continue
                raise

    async def _abort(self, producer: Producer, exc: KafkaException) -> None:
        error = exc.args[0] if exc.args else None
        detail = error.str() if isinstance(error, KafkaError) else str(exc)
        aborted = False
        # Abortable or not, try: the error that surfaces can be a later call's (sending
        # the offsets: "erroneous state") after the one that made the transaction
        # abortable; a fatal one (fenced) refuses the abort, and the write fails.
        with contextlib.suppress(KafkaException):
            await asyncio.to_thread(producer.abort_transaction, self._timeout)
            aborted = True
        rebalanced = isinstance(error, KafkaError) and error.code() in REBALANCED
        if aborted and not rebalanced and not self._refused_now:
            # a partition refused when added to the transaction: Kafka does not say which
            # topic, so ask it which of this write's topics this agent may not write
            for topic in sorted(self._topics_now):
                if await asyncio.to_thread(self._write_refused, topic) is not None:
                    self._refused_now.add(topic)
        refused = self._remember_refused() if aborted else frozenset()
        raise TransactionFailed(
            f"agent {self.agent}: transaction failed ({detail}); "
            f"delivery errors: {self._errors[:3]}",
            authorization=self._refused
            or (isinstance(error, KafkaError) and error.code() in AUTHORIZATION_ERRORS),
            rebalanced=aborted and rebalanced,
            refused=refused,
        ) from exc

    def _remember_refused(self) -> frozenset[str]:
        """The topics refused in this write, remembered: records to them fail from now on."""
        for topic in self._refused_now:
            self._refused_topics[topic] = "Kafka refused this agent's write (not authorized)"
            self._writable.discard(topic)
            log.error(
                "agent %s: Kafka refused a write to %s: records that write to it fail "
                "(output-refused); check the KafkaUser's ACLs",
                self.agent,
                topic,
            )
        return frozenset(self._refused_now)


def record_size(record: OutRecord) -> int:
    """Bytes of ``record``'s key, value and headers (what counts against a record's limit)."""
    headers = sum(len(k) + len(v) for k, v in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers
