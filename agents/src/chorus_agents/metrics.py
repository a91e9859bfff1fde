"""Prometheus metrics of one agent, served at ``/metrics`` on the agent's HTTP port.

Each :class:`AgentMetrics` has its own registry (several agents may share a process in
tests); ``/metrics`` serves it together with prometheus-client's default registry, which
holds the process metrics and what the tool gateway (``chorus_tool_calls_total``,
``chorus_tool_call_seconds``) and the model providers (``chorus_model_tokens_total``)
count. Three sources feed the agent's own registry:

- the runtime's own measurements (handling latency, outcomes, errors), recorded by the
  executor and event wrappers;
- the audit log (:meth:`AgentMetrics.observe_audit`): records by kind, model calls by
  provider, model and outcome;
- the Kafka loop's counters (``ServerStats``), read at scrape time, and the consumer
  lag, sampled by :class:`LagSampler` from the group's committed offsets and the
  partitions' high watermarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chorus_agents.binding.writer import AUTHORIZATION_ERRORS

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class AgentMetrics:
    """The metrics of one agent; every series carries no agent label (the scrape target does)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.handled = Counter(
            "chorus_handled",
            "Messages and events the agent's logic handled, by source and outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "chorus_handling_seconds",
            "Time from the start of handling a message or event to its end",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "chorus_errors", "Errors by where they happened", ["where"], registry=r
        )
        self.model_calls = Counter(
            "chorus_model_calls",
            "Model calls by provider, model and outcome",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.audit_records = Counter(
            "chorus_audit_records", "Audit records written, by kind", ["kind"], registry=r
        )
        self.consumer_lag = Gauge(
            "chorus_consumer_lag",
            "Records not yet consumed by the agent's group (sampled), by topic and partition",
            ["topic", "partition"],
            registry=r,
        )
        self.lag_sampled = Gauge(
            "chorus_consumer_lag_sampled_timestamp_seconds",
            "When the consumer lag was last sampled",
            registry=r,
        )
        self.authorization_failures = Counter(
            "chorus_kafka_authorization_failures",
            "Times Kafka refused the agent access (ACLs), by operation",
            ["operation"],
            registry=r,
        )

    def observe_audit(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Counts what an audit record tells: its kind; for a model call, which and how.

        Tool calls and model tokens are counted where they happen (the tool gateway,
        the providers), in the default registry, not here: the same series twice in one
        scrape would be invalid.
        """
        self.audit_records.labels(kind).inc()
        if kind == "model.call":
            self.model_calls.labels(
                str(fields.get("provider", "")),
                str(fields.get("model", "")),
                str(fields.get("outcome", "ok")),
            ).inc()

    @contextlib.contextmanager
    def handling(self, source: str) -> Iterator[None]:
        """Times the body and counts its outcome (``ok``, or ``error`` when it raises)."""
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.handled.labels(source, "error").inc()
            self.errors.labels(source).inc()
            raise
        else:
            self.handled.labels(source, "ok").inc()
        finally:
            self.latency.labels(source).observe(time.perf_counter() - start)

    def watch_loop(self, stats: Callable[[], Any]) -> None:
        """Exposes the Kafka loop's counters (``ServerStats``), read at every scrape."""
        self.registry.register(_LoopCollector(stats))

    def route(self) -> Route:
        """The ``/metrics`` route (Prometheus text format)."""

        async def metrics(_: Request) -> Response:
            body = generate_latest(self.registry) + generate_latest(REGISTRY)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return Route(METRICS_PATH, metrics, methods=["GET"])


class _LoopCollector(Collector):
    """The loop's counters; read with ``getattr`` so a leaner loop may drop or add some."""

    def __init__(self, stats: Callable[[], Any]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        stats = self._stats()
        if stats is None:
            return []
        records = CounterMetricFamily(
            "chorus_records", "Records polled from the inbox and subscribed topics"
        )
        records.add_metric([], float(getattr(stats, "records", 0)))
        requests = CounterMetricFamily(
            "chorus_requests",
            "A2A requests by method, and domain events (event:<topic>), taken by the loop",
            labels=["method"],
        )
        for method, count in dict(getattr(stats, "requests", {})).items():
            requests.add_metric([str(method)], float(count))
        dead = CounterMetricFamily(
            "chorus_dead_letters",
            "Records sent to the dead-letter topic, by reason",
            labels=["reason"],
        )
        for reason, count in dict(getattr(stats, "poison", {})).items():
            dead.add_metric([str(reason)], float(count))
        transactions = CounterMetricFamily("chorus_transactions", "Kafka transactions committed")
        transactions.add_metric([], float(getattr(stats, "transactions", 0)))
        produced = CounterMetricFamily("chorus_produced_records", "Records written by the loop")
        produced.add_metric([], float(getattr(stats, "produced", 0)))
        buffered = GaugeMetricFamily(
            "chorus_buffered_records", "Input records taken and not finished yet"
        )
        buffered.add_metric([], float(getattr(stats, "buffered", 0)))
        pauses = CounterMetricFamily(
            "chorus_pauses",
            "Times the loop paused its partitions: as many records taken as it may hold",
        )
        pauses.add_metric([], float(getattr(stats, "pauses", 0)))
        refused = GaugeMetricFamily(
            "chorus_kafka_authorization_failed", "1 while Kafka refuses the agent access"
        )
        refused.add_metric([], 1.0 if getattr(stats, "authorization_failed", False) else 0.0)
        return [records, requests, dead, transactions, produced, buffered, pauses, refused]


class LagSampler:
    """Samples the agent group's lag every ``interval`` seconds into :class:`AgentMetrics`.

    It reads the group's committed offsets (without joining the group) and each
    partition's high watermark. In read_committed topics the high watermark counts
    transaction markers, so an idle group shows a lag of about one per transaction.
    ``last_ok`` is the monotonic time of the last successful sample (readiness uses it
    as "Kafka is reachable"); ``authorization_error`` names the last refusal, if any.
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        *,
        group_id: str,
        topics: Sequence[str],
        metrics: AgentMetrics,
        interval: float = 15.0,
        timeout: float = 10.0,
    ) -> None:
        self.group_id = group_id
        self.topics = tuple(topics)
        self.metrics = metrics
        self.interval = interval
        self.timeout = timeout
        self.last_ok: float | None = None
        self.authorization_error: str | None = None
        self.last_error: str | None = None
        self._config = {
            **kafka_config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "client.id": f"chorus-lag-{uuid.uuid4().hex[:8]}",
        }
        self._consumer: Consumer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Samples until ``stop`` is set; a failed sample is logged and tried again later."""
        try:
            while not stop.is_set():
                await self.sample()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            if self._consumer is not None:
                consumer, self._consumer = self._consumer, None
                await asyncio.to_thread(consumer.close)

    async def sample(self) -> dict[tuple[str, int], int]:
        """One sample: the lag per topic and partition (also set in the metrics)."""
        try:
            lags = await asyncio.to_thread(self._sample)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            text = error.str() if isinstance(error, KafkaError) else str(exc)
            if isinstance(error, KafkaError) and error.code() in AUTHORIZATION_ERRORS:
                if self.authorization_error is None:
                    log.error("consumer group %s: Kafka refused access: %s", self.group_id, text)
                self.authorization_error = text
                self.metrics.authorization_failures.labels("describe-group").inc()
            elif self.last_error != text:
                log.warning("consumer group %s: lag not sampled: %s", self.group_id, text)
            self.last_error = text
            return {}
        self.last_ok = time.monotonic()
        self.authorization_error = self.last_error = None
        for (topic, partition), lag in lags.items():
            self.metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        self.metrics.lag_sampled.set(time.time())
        return lags

    def _sample(self) -> dict[tuple[str, int], int]:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        consumer = self._consumer
        partitions: list[TopicPartition] = []
        for topic in self.topics:
            metadata = consumer.list_topics(topic, timeout=self.timeout).topics[topic]
            if metadata.error is not None:
                if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                raise KafkaException(metadata.error)
            partitions.extend(TopicPartition(topic, p) for p in sorted(metadata.partitions))
        if not partitions:
            return {}
        committed = consumer.committed(partitions, timeout=self.timeout)
        lags: dict[tuple[str, int], int] = {}
        for position in committed:
            if position.error is not None:
                raise KafkaException(position.error)
            low, high = consumer.get_watermark_offsets(position, timeout=self.timeout, cached=False)
            start = position.offset if position.offset >= 0 else low
            lags[(position.topic, position.partition)] = max(0, high - start)
        return lags
