"""Tumbling event-time windows over a keyed stream: how many events, and their sum.

Input records (JSON): ``{"key": str, "value": int, "event_time": "YYYY-MM-DD HH:MM:SS[.fff]"}``.
Output records (JSON, keyed by ``key``): ``key``, ``window_start``, ``window_end``,
``event_count``, ``value_sum``; one per key and window, emitted when the watermark (the
latest event time seen minus ``watermark_delay_seconds``) passes the window's end. Events
later than that are dropped.

Config: ``bootstrap_servers``, ``source_topic``, ``sink_topic``; optional ``window_seconds``
(10), ``watermark_delay_seconds`` (5), ``bounded`` (false), ``group_id``,
``kafka_properties``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyflink.table import StatementSet, StreamTableEnvironment

from chorus_flink.kafka import KafkaSettings, ident, sink_table, source_table
from chorus_flink.tables import interval, watermark

SOURCE_COLUMNS = ["`key` STRING", "`value` BIGINT", "`event_time` TIMESTAMP(3)"]
SINK_COLUMNS = [
    "`key` STRING",
    "`window_start` TIMESTAMP(3)",
    "`window_end` TIMESTAMP(3)",
    "`event_count` BIGINT",
    "`value_sum` BIGINT",
]


@dataclass(frozen=True)
class WindowedCountsConfig:
    kafka: KafkaSettings
    source_topic: str
    sink_topic: str
    window_seconds: int = 10
    watermark_delay_seconds: int = 5
    bounded: bool = False
    group_id: str = "chorus-flink-windowed-counts"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WindowedCountsConfig:
        for key in ("source_topic", "sink_topic"):
            if key not in config:
                raise ValueError(f"job windowed_counts: config is missing {key!r}")
        return cls(
            kafka=KafkaSettings.from_config(config),
            source_topic=str(config["source_topic"]),
            sink_topic=str(config["sink_topic"]),
            window_seconds=int(config.get("window_seconds", cls.window_seconds)),
            watermark_delay_seconds=int(
                config.get("watermark_delay_seconds", cls.watermark_delay_seconds)
            ),
            bounded=bool(config.get("bounded", cls.bounded)),
            group_id=str(config.get("group_id", cls.group_id)),
        )


def windowed_counts_sql(source: str, sink: str, window_seconds: int) -> str:
    """The transformation: per key and tumbling window, the count and the sum of values."""
    return f"""
INSERT INTO {ident(sink)}
SELECT `key`, window_start, window_end, COUNT(*) AS event_count, SUM(`value`) AS value_sum
FROM TABLE(
  TUMBLE(TABLE {ident(source)}, DESCRIPTOR(`event_time`), {interval(window_seconds)})
)
GROUP BY `key`, window_start, window_end
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the Kafka source and sink around :func:`windowed_counts_sql`."""
    settings = WindowedCountsConfig.from_config(config)
    t_env.execute_sql(
        source_table(
            "events",
            [*SOURCE_COLUMNS, watermark(settings.watermark_delay_seconds)],
            topic=settings.source_topic,
            kafka=settings.kafka,
            group_id=settings.group_id,
            bounded=settings.bounded,
        )
    )
    t_env.execute_sql(
        sink_table(
            "windowed_counts",
            SINK_COLUMNS,
            topic=settings.sink_topic,
            kafka=settings.kafka,
            key_field="key",
        )
    )
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        windowed_counts_sql("events", "windowed_counts", settings.window_seconds)
    )
    return statements
