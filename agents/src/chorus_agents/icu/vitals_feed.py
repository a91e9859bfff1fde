"""The vitals feed: ``icu.vitals`` tailed into the device gateway, so the monitors are live.

The clinical MCP server (:mod:`.clinical_server`) runs a :class:`VitalsFeed` when it is
given a broker (``CHORUS_BOOTSTRAP_SERVERS``, or ``--vitals-bootstrap-servers`` with
``python -m``); without one there is no feed and the server needs no Kafka. The feed is a
confluent-kafka consumer in a background thread:

- it reads ``read_committed`` and only reads: no consumer group is joined (the partitions
  are assigned, so every replica of the server sees every patient), no offset is
  committed, nothing is written to Kafka;
- it starts at the **latest** offsets by default (``start="latest"``): the gateway is the
  monitors' state from now on. Replaying the topic would raise again, as active, every
  alarm of the retention period, including those acknowledged before a restart (the
  gateway keeps acknowledgements in memory); a monitor reports every parameter at least
  once per monitoring interval (at most an hour, a minute by default), so the latest
  values are back within one interval. ``start="earliest"`` reads the topic from the
  beginning (a replay, a test);
- partitions that appear later (the topic created after the server started, partitions
  added; looked up every :attr:`FeedConfig.metadata_refresh_seconds`) are read from their
  beginning: all they hold was written after the feed started;
- each record (the generator's format, :mod:`.generator`: ``{"patient_id", "parameter",
  "value", "event_time"}``) goes to :meth:`DeviceGateway.observe
  <chorus_agents.icu.devices.DeviceGateway.observe>`, which keeps the latest value and
  raises the alarms. A record that is not one (:func:`parse_vital`), or that the gateway
  refuses (an unknown patient or parameter), is skipped: logged with its reason and
  counted (:meth:`VitalsFeed.status`, the server's ``get_vitals_feed_status`` tool);
- a Kafka error is logged and retried; nothing the feed meets stops the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chorus_agents.icu.devices import DeviceGateway, DeviceRefused
from chorus_agents.icu.generator import TOPIC
from chorus_agents.kafka import helper_group

log = logging.getLogger(__name__)

BOOTSTRAP_ENV = "CHORUS_BOOTSTRAP_SERVERS"
"""The broker the feed reads from (plaintext); unset or empty: no feed."""
TOPIC_ENV = "CHORUS_VITALS_TOPIC"
"""The topic the feed reads (default :data:`~chorus_agents.icu.generator.TOPIC`)."""
START_ENV = "CHORUS_VITALS_START"
"""``latest`` (the default) or ``earliest``."""

Start = Literal["latest", "earliest"]
STARTS: tuple[Start, ...] = ("latest", "earliest")
RETRY_SECONDS = 1.0
"""The pause after a Kafka error (a topic without leaders yet, a broker away)."""


@dataclass(frozen=True)
class FeedConfig:
    """Where the feed reads and from where."""

    bootstrap_servers: str
    topic: str = TOPIC
    start: Start = "latest"
    metadata_refresh_seconds: float = 30.0
    """How often the feed looks for partitions it does not read yet."""

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"vitals feed: start {self.start!r} is not one of {STARTS}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FeedConfig | None:
        """The feed :data:`BOOTSTRAP_ENV`, :data:`TOPIC_ENV` and :data:`START_ENV` describe;
        ``None`` without a bootstrap address."""
        env = os.environ if environ is None else environ
        bootstrap = env.get(BOOTSTRAP_ENV, "").strip()
        if not bootstrap:
            return None
        start = env.get(START_ENV, "").strip() or "latest"
        if start not in STARTS:
            raise ValueError(f"{START_ENV}={start!r}: use one of {', '.join(STARTS)}")
        return cls(bootstrap, env.get(TOPIC_ENV, "").strip() or TOPIC, start)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--vitals-bootstrap-servers``, ``--vitals-topic`` and ``--vitals-start``; their
    defaults are the environment's (:meth:`FeedConfig.from_env`)."""
    parser.add_argument(
        "--vitals-bootstrap-servers",
        default=os.environ.get(BOOTSTRAP_ENV, ""),
        help=f"Kafka to read the vitals from (plaintext; default ${BOOTSTRAP_ENV}; unset: none)",
    )
    parser.add_argument("--vitals-topic", default=os.environ.get(TOPIC_ENV) or TOPIC)
    parser.add_argument(
        "--vitals-start", choices=STARTS, default=os.environ.get(START_ENV) or "latest"
    )


def config_from_args(args: argparse.Namespace) -> FeedConfig | None:
    """The feed :func:`add_arguments`' options describe; ``None`` without a broker."""
    if not args.vitals_bootstrap_servers.strip():
        return None
    return FeedConfig(args.vitals_bootstrap_servers.strip(), args.vitals_topic, args.vitals_start)


class MalformedVital(ValueError):
    """A record that is not a vital; ``rule`` names what is wrong (``not_json``...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class VitalRecord:
    patient_id: str
    parameter: str
    value: float
    event_time: str


def parse_vital(value: bytes | None) -> VitalRecord:
    """The vital a record's value holds; raises :class:`MalformedVital` if it holds none."""
    if not value:
        raise MalformedVital("empty", "the record has no value")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedVital("not_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedVital("not_an_object", f"not a JSON object: {type(data).__name__}")
    for name in ("patient_id", "parameter", "event_time"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise MalformedVital("missing_field", f"{name} missing or not a non-empty string")
    number = data.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise MalformedVital("bad_value", f"value {number!r} is not a finite number")
    try:
        datetime.fromisoformat(data["event_time"])
    except ValueError:
        raise MalformedVital(
            "bad_event_time", f"event_time {data['event_time']!r} is not a timestamp"
        ) from None
    return VitalRecord(data["patient_id"], data["parameter"], float(number), data["event_time"])


ConsumerFactory = Callable[[dict[str, Any]], Any]


def _consumer(config: dict[str, Any]) -> Any:
    from confluent_kafka import Consumer

    return Consumer(config)


class VitalsFeed:
    """Tails :attr:`config`'s topic into ``devices`` from a background thread.

    :meth:`start` returns at once (the thread connects, looks the topic up and assigns its
    partitions; a missing topic is waited for); :meth:`stop` ends the thread and closes
    the consumer. :meth:`running` does both around a block, and may be nested (the
    thread runs while any user is inside). :meth:`handle` takes one record's value:
    the thread calls it, and tests may. :meth:`status` may be called from any thread.
    """

    def __init__(
        self,
        devices: DeviceGateway,
        config: FeedConfig,
        *,
        consumer_factory: ConsumerFactory = _consumer,
    ) -> None:
        self.devices = devices
        self.config = config
        self._consumer_factory = consumer_factory
        self._lock = threading.Lock()
        self._users = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._records = 0
        self._observed = 0
        self._alarms = 0
        self._skipped: Counter[str] = Counter()
        self._last_skipped: dict[str, str] | None = None
        self._last_error: str | None = None
        self._start_offsets: dict[int, int] = {}
        self._looked_up = False

    # --- one record ------------------------------------------------------------------------

    def handle(self, value: bytes | None, where: str = "") -> bool:
        """Observes the vital ``value`` holds; logs and counts it as skipped if there is
        none or the gateway refuses it. ``where`` (``topic[partition]@offset``) goes to the
        log. Returns whether the record was observed; never raises for a bad record."""
        try:
            vital = parse_vital(value)
            alarm = self.devices.observe(
                vital.patient_id, vital.parameter, vital.value, vital.event_time
            )
        except (MalformedVital, DeviceRefused) as refused:
            self._skip(where, refused.rule, str(refused))
            return False
        except Exception as exc:  # a bug must not end the feed; the record is skipped
            log.exception("vitals feed: %s: skipped: unexpected error", where)
            self._skip(where, "error", f"{type(exc).__name__}: {exc}")
            return False
        with self._lock:
            self._records += 1
            self._observed += 1
            self._alarms += alarm is not None
        if alarm is not None:
            log.info("vitals feed: %s: %s raised %s", where, alarm.patient_id, alarm.message)
        return True

    def _skip(self, where: str, rule: str, message: str) -> None:
        log.warning("vitals feed: %s: record skipped (%s): %s", where or "record", rule, message)
        with self._lock:
            self._records += 1
            self._skipped[rule] += 1
            self._last_skipped = {"where": where, "reason": rule, "message": message}

    def status(self) -> dict[str, Any]:
        """What the feed reads and what it did: records read, observed, alarms raised,
        skipped (in all and by reason, the last one), the partitions read and the offset
        each started at, the last Kafka error."""
        with self._lock:
            thread = self._thread
            return {
                "enabled": True,
                "topic": self.config.topic,
                "start": self.config.start,
                "running": thread is not None and thread.is_alive(),
                "partitions": {str(p): o for p, o in sorted(self._start_offsets.items())},
                "records": self._records,
                "observed": self._observed,
                "alarms_raised": self._alarms,
                "skipped": sum(self._skipped.values()),
                "skipped_by_reason": dict(sorted(self._skipped.items())),
                "last_skipped": self._last_skipped,
                "last_error": self._last_error,
            }

    # --- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the thread, unless it runs already for another user."""
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            self._stop = threading.Event()
            self._start_offsets, self._looked_up = {}, False
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="icu-vitals-feed", daemon=True
            )
            self._thread.start()
        log.info(
            "vitals feed: reading %s from %s (%s)",
            self.config.topic,
            self.config.bootstrap_servers,
            self.config.start,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Ends the thread once its last user stopped; waits up to ``timeout`` seconds."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users > 0 or self._thread is None:
                return
            thread, self._thread = self._thread, None
            self._stop.set()
        thread.join(timeout)

    @contextmanager
    def running(self) -> Iterator[VitalsFeed]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.config.bootstrap_servers,
            # Required by librdkafka, never joined (the partitions are assigned) or committed.
            "group.id": helper_group(self.config.topic, "clinical-vitals"),
            "client.id": "chorus-icu-clinical-vitals",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            # Only when a start offset was deleted by retention meanwhile.
            "auto.offset.reset": "earliest",
        }

    def _run(self, stop: threading.Event) -> None:
        consumer: Any = None
        next_lookup = 0.0
        last_error: str | None = None
        while not stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer_factory(self._consumer_config())
                if time.monotonic() >= next_lookup:
                    found = self._assign_new_partitions(consumer)
                    delay = self.config.metadata_refresh_seconds if found else RETRY_SECONDS
                    next_lookup = time.monotonic() + delay
                for message in consumer.consume(500, 0.5):
                    error = message.error()
                    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                    if error is None:
                        self.handle(message.value(), where)
                        continue
                    text = f"{where}: {error}"
                    if text != last_error:  # logged once while it repeats
                        log.warning("vitals feed: Kafka: %s", text)
                    last_error = text
                    with self._lock:
                        self._last_error = text
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:
                    log.warning("vitals feed: %s: %s; retrying", self.config.topic, text)
                last_error = text
                with self._lock:
                    self._last_error = text
                stop.wait(RETRY_SECONDS)
        if consumer is not None:
            try:
                consumer.close()
            except Exception as exc:
                log.warning("vitals feed: closing the consumer: %s", exc)

    def _assign_new_partitions(self, consumer: Any) -> bool:
        """Assigns the topic's partitions not read yet; whether the topic exists.

        At the first lookup that finds the topic, its partitions start where
        :attr:`FeedConfig.start` says; partitions found later start at their beginning.
        """
        from confluent_kafka import TopicPartition

        topic = self.config.topic
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            if not self._looked_up:
                log.info("vitals feed: topic %s does not exist yet; waiting for it", topic)
            self._looked_up = True
            return False
        new = sorted(set(metadata.partitions) - set(self._start_offsets))
        if not new:
            return True
        latest = not self._looked_up and self.config.start == "latest"
        offsets: dict[int, int] = {}
        for partition in new:
            # With read_committed the high watermark is the last stable offset.
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False
            )
            offsets[partition] = high if latest else low
        consumer.incremental_assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
        with self._lock:
            self._start_offsets.update(offsets)
        self._looked_up = True
        log.info("vitals feed: reading %s from offsets %s", topic, offsets)
        return True
