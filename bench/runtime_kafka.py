"""The Kafka side of ``bench.runtime``: the raw loop, the client, and what a run wrote.

- :func:`serve_raw`: the ceiling, a bare confluent-kafka consume -> produce loop (the
  ``raw`` command of :mod:`bench.runtime` pins it to the server core, in its own process);
- :func:`drive_kafka`: the client; it writes pre-encoded ``SendMessage`` records to an
  inbox, at most ``inflight`` unanswered, and times each until its answer is readable
  (read_committed) on the client's replies topic; :func:`summary` makes the figures of a
  drive's times (the HTTP client's too);
- :class:`KafkaClient`: a fresh replies topic per measurement, and the warmed-up, metered
  drive of one server with what it wrote;
- :func:`end_offsets`, :func:`count_records`, :func:`writes`: the records written per
  input, per topic, counted by reading each topic (read_committed) between its end offsets
  before and after (the offsets also advance by one per transaction marker).

This module imports nothing of :mod:`bench.runtime`; it and :mod:`bench.runtime_http`
import it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.profile_hotpath import Meter

# --- the raw loop (a server) -----------------------------------------------------------------


def serve_raw(bootstrap: str, inbox: str, *, transactions: bool = False) -> None:
    """Answers every record of ``inbox`` until stdin is readable; without ``transactions``,
    committing offsets asynchronously, with them, a transaction per batch holding the
    offsets. Prints ``{"ready": true}`` once subscribed; the caller pins the process."""
    import select

    from confluent_kafka import Consumer, Producer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
    }
    if transactions:
        settings["transactional.id"] = f"bench-raw-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings)
    if transactions:
        producer.init_transactions(30)
    consumer.subscribe([inbox])
    print(json.dumps({"ready": True}), flush=True)
    answer = b'{"jsonrpc":"2.0","id":"x","result":{"message":{"parts":[{"text":"ok"}]}}}'
    while not select.select([sys.stdin], [], [], 0)[0]:
        first = consumer.poll(0.1)
        if first is None:
            continue
        batch = [first, *consumer.consume(499, 0)]
        if transactions:
            producer.begin_transaction()
        for message in batch:
            if message.error() is not None:
                continue
            headers: dict[str, Any] = dict(message.headers() or [])
            producer.produce(
                bytes(headers["chorus-reply-to"]).decode(),
                key=message.key(),
                value=answer,
                headers=[("chorus-correlation-id", headers["chorus-correlation-id"])],
            )
        if transactions:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(30)
        else:
            producer.poll(0)
            consumer.commit(asynchronous=True)
    producer.flush(10)
    consumer.close()


# --- the client, and what a run wrote ------------------------------------------------------

Offsets = dict[tuple[str, int], int]


def drive_kafka(
    bootstrap: str,
    inbox: str,
    replies: str,
    requests: int,
    inflight: int,
    *,
    start: Offsets | None = None,
    tag: str = "r",
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Sends ``requests`` SendMessage records, at most ``inflight`` unanswered; times each.

    Answers are read from ``start`` (the replies topic's offsets; default its beginning);
    ``tag`` prefixes the request ids, so drives that share a replies topic tell their
    answers apart. ``on_start`` and ``on_end`` bracket the timed part (the records are
    encoded before)."""
    from a2a.helpers import new_text_message
    from a2a.types.a2a_pb2 import Role, SendMessageRequest
    from chorus_agents.binding import codec
    from confluent_kafka import Consumer, Producer, TopicPartition

    records = []
    for i in range(requests):
        text = new_text_message(f"hello {i}", role=Role.ROLE_USER, context_id=f"c{i % 64}")
        records.append(
            codec.encode_request(
                "SendMessage",
                SendMessageRequest(message=text),
                topic=inbox,
                request_id=f"{tag}{i}",
                reply_to=replies,
                sender="bench/client",
            )
        )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-client-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 5,
        }
    )
    partitions = consumer.list_topics(replies, timeout=10).topics[replies].partitions
    offsets = start or {}
    consumer.assign([TopicPartition(replies, p, offsets.get((replies, p), 0)) for p in partitions])
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    index = 0
    on_start()
    started = time.perf_counter()
    deadline = time.monotonic() + 180
    while len(latencies) < requests:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{inbox}: {len(latencies)} of {requests} answered in 180 s")
        while index < requests and len(sent) < inflight:
            record = records[index]
            producer.produce(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
            sent[f"{tag}{index}".encode()] = time.perf_counter()
            index += 1
        producer.poll(0)
        for message in consumer.consume(1000, 0.002):
            if message.error() is not None:
                continue
            found: dict[str, Any] = dict(message.headers() or [])
            correlation = found.get("chorus-correlation-id")
            begun = sent.pop(bytes(correlation), None) if correlation is not None else None
            if begun is not None:
                latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    on_end()
    consumer.close()
    return summary(requests / elapsed, latencies)


def summary(rate: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rate": rate,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def end_offsets(bootstrap: str, topics: list[str]) -> Offsets:
    """Each partition's end offset (high watermark) now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})
    found: Offsets = {}
    try:
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in metadata.partitions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                found[(topic, partition)] = high
    finally:
        consumer.close()
    return found


def count_records(bootstrap: str, before: Offsets, after: Offsets) -> Counter[str]:
    """Records per topic between ``before`` and ``after``, read_committed (transaction
    markers and aborted records are not records)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    todo = {tp for tp, end in after.items() if end > before.get(tp, 0)}
    counts: Counter[str] = Counter()
    if not todo:
        return counts
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-count-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(t, p, before.get((t, p), 0)) for t, p in todo])
    deadline = time.monotonic() + 60
    try:
        while todo and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                where = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        todo.discard(where)
                elif int(message.offset() or 0) < after[where]:
                    counts[where[0]] += 1
    finally:
        consumer.close()
    if todo:
        raise RuntimeError(f"counting records: {sorted(todo)} not read to their end in 60 s")
    return counts


def writes(
    bootstrap: str, before: Offsets, after: Offsets, roles: dict[str, str], inputs: int
) -> dict[str, float]:
    """Records per input under each role (``roles``: topic -> role), and the offsets the
    topics advanced per input (records plus transaction markers)."""
    counted = count_records(bootstrap, before, after)
    found = {f"{role}/input": counted[topic] / inputs for topic, role in roles.items()}
    advanced = sum(end - before.get(tp, 0) for tp, end in after.items())
    found["records/input"] = sum(counted.values()) / inputs
    found["offsets/input"] = advanced / inputs
    return found


class KafkaClient:
    """The bench's client on one broker, ``inflight`` requests in flight on every drive."""

    def __init__(self, broker: Any, inflight: int) -> None:
        self.broker, self.inflight = broker, inflight
        self.bootstrap: str = broker.bootstrap_servers

    def replies(self) -> str:
        """A fresh replies topic of the client (what agents answer to)."""
        from chorus_api.topics import replies_topic

        from tests.services.kafka import create_topics

        name = replies_topic(f"b{uuid.uuid4().hex[:8]}", "client")
        create_topics(self.broker, [name], partitions=3)
        return name

    def timed(
        self,
        server: int,
        inbox: str,
        requests: int,
        roles: dict[str, str],
        *,
        warm: int,
        threads: dict[int, tuple[str, float]] | None = None,
    ) -> dict[str, Any]:
        """A warm-up of ``warm`` requests, then the timed drive of the server process
        ``server``; ``roles`` names the server's topics to count (the answers are counted
        too); ``threads`` receives the server's CPU seconds per thread in the timed drive."""
        replies = self.replies()
        roles = {replies: "answer", **roles}
        # the warm-up answers to the same topic: the server's first answer to a new topic
        # waits for its metadata, which a long-lived replies topic never does again
        drive_kafka(self.bootstrap, inbox, replies, warm, self.inflight, tag="w")
        pids = {"server": server, "broker": self.broker.pid, "client": os.getpid()}
        meter = Meter(server if threads is not None else None, **pids)
        before = end_offsets(self.bootstrap, list(roles))
        figures: dict[str, Any] = drive_kafka(
            self.bootstrap,
            inbox,
            replies,
            requests,
            self.inflight,
            start=before,
            on_start=meter.start,
            on_end=meter.stop,
        )
        time.sleep(0.5)  # anything committed after the last answer (none expected)
        after = end_offsets(self.bootstrap, list(roles))
        figures |= meter.figures | {"requests": requests}
        figures |= writes(self.bootstrap, before, after, roles, requests)
        if threads is not None:
            threads.update(meter.threads)
        return figures
