"""The tables every Chorus job shares: a raw source, the signal sink, the dead-letter sink.

A signal job does not call these one by one: :class:`chorus_flink.signal_job.SignalJob` wires
the source, the dead-letter split (:mod:`chorus_flink.deadletter`) and both sinks from the
job's spec, and binds :func:`envelope_columns` to the job's domain. Every interval in a job's SQL is
written with :func:`interval`.

**Raw source.** The value is read as a STRING (``value.format = raw``), never parsed by the
connector, so a malformed record cannot fail the job: :mod:`chorus_flink.deadletter` parses
it in SQL and routes what it cannot use to the dead-letter topic. The payload is read with
:mod:`chorus_flink.udf`'s functions (registered before the source: its computed column uses
one), once per record. ``event_time`` is a computed column taken from the payload's
``event_time`` field (an ISO-8601 timestamp, ``2026-01-01 09:00:00.250`` or
``2026-01-01T09:00:00.250``, UTC); where it is missing or unreadable it is 1970-01-01,
which never advances the watermark (such records are dead letters anyway). The watermark
is ``event_time - watermark_delay_seconds`` and is emitted after every record
(``scan.watermark.emit.strategy = on-event``), so whether a record is late depends only on
the records before it in its partition, not on timing; a signal job can trade that for
throughput (``on-periodic``, :data:`chorus_flink.signal_job.WATERMARK_EMIT`; the
FlinkDeployment does).

**Signals** are CloudEvents 1.0 in structured JSON mode, keyed by ``subject``::

    {"specversion": "1.0", "id": "price_spike:AAPL:2026-01-01T09:01:00.000Z",
     "source": "chorus_flink.jobs.trading", "type": "dev.chorus.trading.price_spike",
     "kind": "price_spike", "subject": "AAPL", "time": "2026-01-01T09:01:00.000Z",
     "data": {...}}

``id`` is deterministic (kind, subject, and what makes the signal unique, usually its event
time), so a consumer can drop a duplicate; ``time`` is the event time the signal is about.
``data`` is a job-specific object; null fields are left out.

**Delivery.** Both sinks write with ``sink.delivery-guarantee = exactly-once``: records are
in Kafka transactions committed when a checkpoint completes, so consumers must read with
``isolation.level = read_committed`` (a job reading another job's output sets
``read_committed=True`` on its source). The transactional id prefix is the job's group id
plus the sink's name: unique per job, stable across restarts. Transactional ids are pooled
(``sink.transaction-naming-strategy = POOLING``): a subtask reuses the ids of committed
transactions instead of opening a new id at every checkpoint, as the default (INCREMENTING)
does; each new id is an InitProducerId round trip and an entry the broker's transaction
coordinator keeps for ``transactional.id.expiration.ms`` (7 days): at the default 10 s
checkpoints, 8,640 a day per sink subtask. Pooling needs Kafka 3.0 or later and, to find its
lingering transactions on recovery, Describe on the transactional ids and Read on the output
topics (DescribeProducers); the operator's stream ACLs grant both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chorus_flink.config import JobConfig
from chorus_flink.kafka import client_options, create_table, ident, quote

EPOCH = "TIMESTAMP '1970-01-01 00:00:00.000'"
TRANSACTION_TIMEOUT_MS = "900000"
"""The sinks' Kafka transaction timeout: the broker's default ``transaction.max.timeout.ms``.

Longer than a checkpoint interval plus a restart, so a restored job can still commit."""

DEFAULT_CHECKPOINT_INTERVAL = "10 s"

RAW_COLUMNS = (
    "`payload` STRING",
    "`source_topic` STRING METADATA FROM 'topic' VIRTUAL",
    "`source_partition` INT METADATA FROM 'partition' VIRTUAL",
    "`source_offset` BIGINT METADATA FROM 'offset' VIRTUAL",
)
"""The raw source's physical and metadata columns; ``event_time`` is added after them."""

ENVELOPE_COLUMNS = (
    "`specversion` STRING",
    "`id` STRING",
    "`source` STRING",
    "`type` STRING",
    "`kind` STRING",
    "`subject` STRING",
    "`time` STRING",
)

DEAD_LETTER_COLUMNS = (
    "`reason` STRING",
    "`payload` STRING",
    "`source_topic` STRING",
    "`source_partition` INT",
    "`source_offset` BIGINT",
    "`job` STRING",
    "`headers` MAP<STRING, BYTES> METADATA",
)


def event_time_value(field: str = "event_time") -> str:
    """SQL: the payload's timestamp field as a TIMESTAMP(3), NULL if absent or unreadable.

    ``CHORUS_JSON_TIMESTAMP`` (:mod:`chorus_flink.udf`): the field's text with ``T`` and
    ``Z`` removed, cast as ``TRY_CAST`` would, read once per record however often asked.
    """
    return f"CHORUS_JSON_TIMESTAMP(`payload`, {quote(field)})"


def event_time_column(field: str = "event_time") -> str:
    """The computed ``event_time`` column: the payload's timestamp, or 1970 if unreadable."""
    return f"`event_time` AS COALESCE({event_time_value(field)}, {EPOCH})"


MAX_INTERVAL_SECONDS = 100 * 86400 - 1
"""The longest :func:`interval`: DAY TO SECOND has a leading precision of two digits."""

RECORD_ID = "CONCAT(CAST(`source_partition` AS STRING), '-', CAST(`source_offset` AS STRING))"
"""SQL: which input record a per-record signal is about (partition-offset), for its id."""


def interval(seconds: int) -> str:
    """SQL: an interval of ``seconds`` seconds, written ``INTERVAL 'd hh:mm:ss' DAY TO SECOND``.

    Use it for every interval: ``INTERVAL '100' SECOND`` fails to parse (it exceeds the
    default precision SECOND(2)), and the planner rejects a larger leading precision in
    some places; DAY TO SECOND works everywhere (window TVFs, OVER ranges, watermarks,
    interval joins) and reaches 99 days 23:59:59.
    """
    count = int(seconds)
    if not 0 <= count <= MAX_INTERVAL_SECONDS:
        raise ValueError(f"interval of {count} s: must be from 0 s to below 100 days")
    days, rest = divmod(count, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{secs:02d}' DAY TO SECOND"


def watermark(delay_seconds: int, column: str = "event_time") -> str:
    """``WATERMARK FOR`` clause: events may be up to ``delay_seconds`` out of order."""
    return f"WATERMARK FOR {ident(column)} AS {ident(column)} - {interval(delay_seconds)}"


def raw_source_table(
    name: str,
    *,
    topic: str,
    job: JobConfig,
    watermark_delay_seconds: int,
    event_time_field: str = "event_time",
    read_committed: bool = False,
    watermark_emit: str = "on-event",
) -> str:
    """DDL for a source reading ``topic``'s values as raw strings, with event time.

    Columns: ``payload`` (the value, NULL for a tombstone), ``source_topic``,
    ``source_partition``, ``source_offset`` and ``event_time`` (rowtime, with the watermark).
    Reads from the earliest offset; a bounded job (``job.bounded``) stops at the offsets
    that were latest when it started. ``read_committed`` for topics written by
    transactional producers (other Flink jobs, agents). ``watermark_emit`` ``on-periodic``
    trades the per-record watermark for throughput (then lateness depends on timing).
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_options(job.kafka),
        "properties.group.id": job.group_id,
        "scan.startup.mode": "earliest-offset",
        "value.format": "raw",
        "scan.watermark.emit.strategy": watermark_emit,
    }
    if read_committed:
        options["properties.isolation.level"] = "read_committed"
    if job.bounded:
        options["scan.bounded.mode"] = "latest-offset"
    columns = [
        *RAW_COLUMNS,
        event_time_column(event_time_field),
        watermark(watermark_delay_seconds),
    ]
    return create_table(name, columns, options)


def _exactly_once(job: JobConfig, sink: str) -> dict[str, str]:
    return {
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": job.transactional_id_prefix(sink),
        "sink.transaction-naming-strategy": "POOLING",
        "properties.transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
    }


def signal_sink_table(name: str, data_columns: Sequence[str], *, topic: str, job: JobConfig) -> str:
    """DDL for the exactly-once signal sink: envelope columns plus ``data ROW<...>``.

    ``data_columns`` are the data object's fields as ``name TYPE`` (every field nullable;
    nulls are left out of the JSON). The record key is the envelope's ``subject``.
    """
    data = "`data` ROW<" + ", ".join(data_columns) + ">"
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_options(job.kafka),
        "key.format": "raw",
        "key.fields": "subject",
        "value.format": "json",
        "value.fields-include": "ALL",
        "value.json.encode.ignore-null-fields": "true",
        "value.json.timestamp-format.standard": "ISO-8601",
        **_exactly_once(job, name),
    }
    return create_table(name, [*ENVELOPE_COLUMNS, data], options)


def dead_letter_sink_table(name: str, *, topic: str, job: JobConfig) -> str:
    """DDL for the exactly-once dead-letter sink (see :mod:`chorus_flink.deadletter`).

    Value: ``{"reason", "payload", "source_topic", "source_partition", "source_offset",
    "job"}``; the reason is also in the record header ``chorus-dead-letter-reason``.
    Records have no key.
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_options(job.kafka),
        "value.format": "json",
        **_exactly_once(job, name),
    }
    return create_table(name, list(DEAD_LETTER_COLUMNS), options)


def iso_time(column: str) -> str:
    """SQL: a TIMESTAMP(3) column as ``yyyy-MM-ddTHH:mm:ss.SSSZ`` (UTC)."""
    return f"CONCAT(DATE_FORMAT({column}, 'yyyy-MM-dd''T''HH:mm:ss.SSS'), 'Z')"


def select_list(columns: Sequence[tuple[str, str]]) -> str:
    """SQL: (column, expression) pairs as a SELECT list, ``expression AS column``."""
    return ",\n  ".join(f"{expr} AS {ident(name)}" for name, expr in columns)


def envelope_columns(
    *,
    domain: str,
    source: str,
    kind: str,
    subject: str,
    time: str,
    data: Mapping[str, str],
    data_columns: Sequence[str],
    id_suffix: str | None = None,
) -> list[tuple[str, str]]:
    """The envelope of one signal as (column, SQL expression) pairs in sink order
    (:func:`select_list` makes them a SELECT list; :func:`either_envelope` combines two).

    ``kind`` is a literal (``price_spike``); ``subject`` and ``time`` (a TIMESTAMP(3)) are
    SQL expressions; ``data`` maps each data field to its SQL expression (fields of
    ``data_columns`` not in it are NULL). ``id`` is ``kind:subject:time`` plus ``id_suffix``
    (an SQL expression) when a subject may have several signals of a kind at one time.
    """
    iso = iso_time(time)
    parts = [quote(kind), f"CAST({subject} AS STRING)", iso]
    if id_suffix is not None:
        parts.append(f"CAST({id_suffix} AS STRING)")
    id_sql = "CONCAT_WS(':', " + ", ".join(parts) + ")"
    values = []
    for column in data_columns:
        field_name, _, field_type = column.partition(" ")
        expr = data.get(field_name.strip("`"), "NULL")
        values.append(f"CAST({expr} AS {field_type})")
    unknown = set(data) - {c.partition(" ")[0].strip("`") for c in data_columns}
    if unknown:
        raise ValueError(f"envelope {kind}: data fields {sorted(unknown)} are not data columns")
    row_type = "ROW<" + ", ".join(data_columns) + ">"
    return [
        ("specversion", "'1.0'"),
        ("id", id_sql),
        ("source", quote(source)),
        ("type", quote(f"dev.chorus.{domain}.{kind}")),
        ("kind", quote(kind)),
        ("subject", f"CAST({subject} AS STRING)"),
        ("time", iso),
        ("data", f"CAST(ROW({', '.join(values)}) AS {row_type})"),
    ]


def either_envelope(
    choice: str, first: Sequence[tuple[str, str]], second: Sequence[tuple[str, str]]
) -> str:
    """The SELECT list of a signal of one of two kinds: ``first`` where the SQL condition
    ``choice`` holds, else ``second`` (both from :func:`envelope_columns`).

    One query can then emit two kinds from one computation (the trading job's ``vwap`` and
    ``volume_anomaly`` from one window aggregate) instead of planning it once per kind.
    """
    if [name for name, _ in first] != [name for name, _ in second]:
        raise ValueError("either_envelope: the two envelopes' columns differ")
    parts = []
    for (name, a), (_, b) in zip(first, second, strict=True):
        expr = a if a == b else f"CASE WHEN {choice} THEN {a} ELSE {b} END"
        parts.append(f"{expr} AS {ident(name)}")
    return ",\n  ".join(parts)


def union_insert(sink: str, queries: Sequence[str]) -> str:
    """SQL: one INSERT of every query into ``sink``.

    A job writes all its signals through ONE insert per sink: each INSERT is its own sink
    operator, and two exactly-once sink operators with one transactional id prefix would
    fence each other's transactions.
    """
    if not queries:
        raise ValueError(f"insert into {sink}: no queries")
    union = "\nUNION ALL\n".join(f"({q})" for q in queries)
    return f"INSERT INTO {ident(sink)}\n{union}"


def ensure_checkpointing(t_env: Any, default_interval: str = DEFAULT_CHECKPOINT_INTERVAL) -> None:
    """Turns on exactly-once checkpointing unless the runner already configured an interval.

    The exactly-once sinks commit their Kafka transactions when a checkpoint completes;
    without checkpoints an unbounded job's output would never become visible to
    ``read_committed`` consumers.
    """
    config = t_env.get_config()
    if not config.get("execution.checkpointing.interval", ""):
        config.set("execution.checkpointing.interval", default_interval)
    if not config.get("execution.checkpointing.mode", ""):
        config.set("execution.checkpointing.mode", "EXACTLY_ONCE")
