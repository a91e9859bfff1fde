"""Customer service: sentiment trend per conversation, and the triggers to escalate it.

Input (``messages_topic``), one JSON object per chat message::

    {"conversation_id": "c-17", "customer_id": "cust-4", "role": "customer",
     "text": "Still broken.", "sentiment": -0.6, "event_time": "2026-01-01T09:00:05Z"}

``role`` is ``customer`` or ``agent``; ``sentiment`` (-1..1) is optional: without it the
job scores ``text`` with a small deterministic lexicon (:mod:`chorus_flink.scoring.sentiment`,
a Python UDF). Anything else, and late messages, go to ``dead_letter_topic`` (see
:mod:`chorus_flink.deadletter`).

Signals (``signals_topic``), keyed by ``conversation_id``:

``sentiment_drop``
    The *trend* is the moving average of the sentiment of the conversation's last
    ``trend_messages`` customer messages (an event-time OVER window). A customer message
    escalates when the trend fell by ``drop_threshold`` or more since the previous
    customer message (``reason`` ``trend_drop``), or crossed below ``sentiment_floor``
    (``below_floor``; also on the conversation's first customer message): ``customer_id``,
    ``sentiment``, ``trend``, ``previous_trend``, ``reason``; ``time`` = the message's.
``long_wait``
    A customer message that starts a wait (the conversation's first message, or the first
    customer message after an agent's) with no agent message in the same conversation
    within ``reply_timeout_seconds`` after it (an event-time interval left join: it fires
    when the watermark passes the deadline): ``customer_id``, ``message_time``,
    ``timeout_seconds``; ``time`` = the deadline.
``repeat_contact``
    A conversation opened (its first message) by a customer less than
    ``repeat_contact_seconds`` after the customer's previous conversation opened:
    ``customer_id``, ``previous_conversation_id``, ``previous_opened``, ``gap_seconds``;
    ``time`` = the new conversation's first message.

Which message is a conversation's first is kept in keyed state per conversation; on a
long-running deployment bound it with ``table.exec.state.ttl`` longer than
``repeat_contact_seconds`` and the longest conversation.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chorus_flink.config import ConfigError, JobConfig
from chorus_flink.deadletter import Field, checked_view, dead_letter_insert, valid_view
from chorus_flink.kafka import ident
from chorus_flink.scoring.sentiment import sentiment
from chorus_flink.tables import (
    dead_letter_sink_table,
    ensure_checkpointing,
    envelope,
    raw_source_table,
    signal_sink_table,
    union_insert,
)

if TYPE_CHECKING:
    from pyflink.table import StatementSet, StreamTableEnvironment

MODULE = "chorus_flink.jobs.customer_service"

PARAMETERS: Mapping[str, str | None] = {
    "messages_topic": "support.messages",
    "signals_topic": "support.signals",
    "dead_letter_topic": "support.messages.dlq",
    "watermark_delay_seconds": "5",
    "trend_messages": "3",
    "drop_threshold": "0.5",
    "sentiment_floor": "-0.5",
    "reply_timeout_seconds": "300",
    "repeat_contact_seconds": "86400",
}
"""Every parameter and its default, as in the operator's catalogue."""

FIELDS = (
    Field("conversation_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    Field("customer_id", "STRING", check="CHAR_LENGTH(TRIM({})) > 0"),
    Field("role", "STRING", check="{} IN ('customer', 'agent')"),
    Field("text", "STRING"),
    Field("sentiment", "DOUBLE", required=False, check="{0} >= -1 AND {0} <= 1"),
)

DATA_COLUMNS = (
    "`customer_id` STRING",
    "`sentiment` DOUBLE",
    "`trend` DOUBLE",
    "`previous_trend` DOUBLE",
    "`reason` STRING",
    "`message_time` TIMESTAMP(3)",
    "`timeout_seconds` BIGINT",
    "`previous_conversation_id` STRING",
    "`previous_opened` TIMESTAMP(3)",
    "`gap_seconds` BIGINT",
)


@dataclass(frozen=True)
class SupportParameters:
    """The customer-service job's trend and escalation thresholds."""

    trend_messages: int = 3
    drop_threshold: float = 0.5
    sentiment_floor: float = -0.5
    reply_timeout_seconds: int = 300
    repeat_contact_seconds: int = 86400

    @classmethod
    def from_job(cls, job: JobConfig) -> SupportParameters:
        return cls(
            trend_messages=job.integer("trend_messages", minimum=1),
            drop_threshold=job.number("drop_threshold", minimum=0.0),
            sentiment_floor=job.number("sentiment_floor", minimum=-1.0),
            reply_timeout_seconds=job.integer("reply_timeout_seconds", minimum=1),
            repeat_contact_seconds=job.integer("repeat_contact_seconds", minimum=1),
        ).checked(job)

    def checked(self, job: JobConfig) -> SupportParameters:
        for name in ("reply_timeout_seconds", "repeat_contact_seconds"):
            if getattr(self, name) >= 100 * 86400:
                raise ConfigError(f"job {job.job}: config {name!r} must be below 100 days")
        return self


def lexicon_sentiment(text: str | None) -> float:
    """UDF: :func:`chorus_flink.scoring.sentiment.sentiment`."""
    return sentiment(text)


def register_udfs(t_env: StreamTableEnvironment) -> None:
    """Registers ``lexicon_sentiment``; Python workers use this interpreter."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    config = t_env.get_config()
    if not config.get("python.executable", ""):
        # The mini-cluster's workers would otherwise run whatever `python` is on PATH.
        config.set("python.executable", sys.executable)
    t_env.create_temporary_function(
        "lexicon_sentiment",
        udf(lexicon_sentiment, input_types=[DataTypes.STRING()], result_type=DataTypes.DOUBLE()),
    )


def seconds(count: int) -> str:
    """SQL: an interval of ``count`` seconds, written DAY TO SECOND.

    ``INTERVAL '300' SECOND`` overflows the default SECOND(2), and the planner rejects a
    larger leading precision in expressions; DAY TO SECOND reaches 99 days.
    """
    days, rest = divmod(int(count), 86400)
    if not 0 <= days < 100:
        raise ValueError(f"interval of {count} s: must be below 100 days")
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{secs:02d}' DAY TO SECOND"


def scored_view(name: str, messages: str) -> str:
    """DDL: the messages with ``score``: their sentiment, or the lexicon's."""
    return f"""
CREATE TEMPORARY VIEW {ident(name)} AS
SELECT `conversation_id`, `customer_id`, `role`, `event_time`, `source_partition`,
  `source_offset`,
  CASE WHEN `sentiment` IS NULL THEN lexicon_sentiment(`text`) ELSE `sentiment` END AS `score`
FROM {ident(messages)}
""".strip()


def _previous_row() -> str:
    return "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"


def sentiment_drop_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``sentiment_drop`` when the customer's trend falls fast or below the floor."""
    floor, drop = repr(p.sentiment_floor), repr(p.drop_threshold)
    crossed = f"`trend` < {floor} AND (`n` = 1 OR `previous_trend` >= {floor})"
    fell = f"`n` = 2 AND `previous_trend` - `trend` >= {drop}"
    select = envelope(
        domain="support",
        source=MODULE,
        kind="sentiment_drop",
        subject="`conversation_id`",
        time="`event_time`",
        id_suffix="CONCAT(CAST(`source_partition` AS STRING), '-', "
        "CAST(`source_offset` AS STRING))",
        data={
            "customer_id": "`customer_id`",
            "sentiment": "`score`",
            "trend": "`trend`",
            "previous_trend": "`previous_trend`",
            "reason": f"CONCAT_WS(',', CASE WHEN {fell} THEN 'trend_drop' END, "
            f"CASE WHEN {crossed} THEN 'below_floor' END)",
        },
        data_columns=DATA_COLUMNS,
    )
    return f"""
SELECT
  {select}
FROM (
  SELECT *, CASE WHEN `n` = 2 THEN `trend_sum` - `trend` END AS `previous_trend`
  FROM (
    SELECT *, SUM(`trend`) OVER w AS `trend_sum`, COUNT(*) OVER w AS `n`
    FROM (
      SELECT `conversation_id`, `customer_id`, `event_time`, `source_partition`,
        `source_offset`, `score`,
        AVG(`score`) OVER (
          PARTITION BY `conversation_id` ORDER BY `event_time`
          ROWS BETWEEN {p.trend_messages - 1} PRECEDING AND CURRENT ROW
        ) AS `trend`
      FROM {ident(scored)}
      WHERE `role` = 'customer'
    )
    WINDOW w AS (PARTITION BY `conversation_id` ORDER BY `event_time` {_previous_row()})
  )
)
WHERE ({fell}) OR ({crossed})
""".strip()


def long_wait_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``long_wait`` for a wait that no agent message ends in time."""
    deadline = f"w.`event_time` + {seconds(p.reply_timeout_seconds)}"
    select = envelope(
        domain="support",
        source=MODULE,
        kind="long_wait",
        subject="w.`conversation_id`",
        time=deadline,
        data={
            "customer_id": "w.`customer_id`",
            "message_time": "w.`event_time`",
            "timeout_seconds": str(p.reply_timeout_seconds),
        },
        data_columns=DATA_COLUMNS,
    )
    # A wait starts at a customer message whose previous message (if any) is an agent's:
    # over the previous and this row, COUNT = 1 or one agent message among the two.
    return f"""
SELECT
  {select}
FROM (
  SELECT * FROM (
    SELECT `conversation_id`, `customer_id`, `role`, `event_time`,
      COUNT(*) OVER w AS `n`,
      SUM(CASE WHEN `role` = 'agent' THEN 1 ELSE 0 END) OVER w AS `agents`
    FROM {ident(scored)}
    WINDOW w AS (PARTITION BY `conversation_id` ORDER BY `event_time` {_previous_row()})
  )
  WHERE `role` = 'customer' AND (`n` = 1 OR `agents` = 1)
) AS w
LEFT JOIN (
  SELECT `conversation_id`, `event_time` FROM {ident(scored)} WHERE `role` = 'agent'
) AS r
  ON r.`conversation_id` = w.`conversation_id`
  AND r.`event_time` BETWEEN w.`event_time` AND {deadline}
WHERE r.`conversation_id` IS NULL
""".strip()


def repeat_contact_signals(scored: str, p: SupportParameters) -> str:
    """SQL query: ``repeat_contact`` when a customer opens conversations in quick succession."""
    select = envelope(
        domain="support",
        source=MODULE,
        kind="repeat_contact",
        subject="`conversation_id`",
        time="`event_time`",
        data={
            "customer_id": "`customer_id`",
            "previous_conversation_id": "CASE WHEN `most` = `conversation_id` THEN `least` "
            "ELSE `most` END",
            "previous_opened": "`previous_opened`",
            "gap_seconds": "TIMESTAMPDIFF(SECOND, `previous_opened`, `event_time`)",
        },
        data_columns=DATA_COLUMNS,
    )
    # Openings: each conversation's first message. Per customer, over the previous and
    # this opening: MIN/MAX of the ids give the previous id, MIN of the times its time.
    return f"""
SELECT
  {select}
FROM (
  SELECT `conversation_id`, `customer_id`, `event_time`,
    MIN(`conversation_id`) OVER w AS `least`,
    MAX(`conversation_id`) OVER w AS `most`,
    MIN(`event_time`) OVER w AS `previous_opened`,
    COUNT(*) OVER w AS `n`
  FROM (
    SELECT * FROM (
      SELECT `conversation_id`, `customer_id`, `event_time`,
        COUNT(*) OVER (
          PARTITION BY `conversation_id` ORDER BY `event_time`
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS `nth`
      FROM {ident(scored)}
    )
    WHERE `nth` = 1
  )
  WINDOW w AS (PARTITION BY `customer_id` ORDER BY `event_time` {_previous_row()})
)
WHERE `n` = 2 AND `event_time` < `previous_opened` + {seconds(p.repeat_contact_seconds)}
""".strip()


def build(t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet:
    """Wires the messages source, the UDF, the signal and dead-letter sinks around the SQL."""
    job = JobConfig.parse(MODULE, config, PARAMETERS)
    p = SupportParameters.from_job(job)
    ensure_checkpointing(t_env)
    register_udfs(t_env)
    t_env.execute_sql(
        raw_source_table(
            "messages_raw",
            topic=job.text("messages_topic"),
            job=job,
            watermark_delay_seconds=job.integer("watermark_delay_seconds", minimum=0),
        )
    )
    t_env.execute_sql(checked_view("messages_checked", "messages_raw", FIELDS))
    t_env.execute_sql(valid_view("messages", "messages_checked", FIELDS))
    t_env.execute_sql(scored_view("scored_messages", "messages"))
    t_env.execute_sql(
        signal_sink_table("signals", DATA_COLUMNS, topic=job.text("signals_topic"), job=job)
    )
    t_env.execute_sql(
        dead_letter_sink_table("dead_letters", topic=job.text("dead_letter_topic"), job=job)
    )
    statements = t_env.create_statement_set()
    statements.add_insert_sql(dead_letter_insert("dead_letters", "messages_checked", job))
    statements.add_insert_sql(
        union_insert(
            "signals",
            [
                sentiment_drop_signals("scored_messages", p),
                long_wait_signals("scored_messages", p),
                repeat_contact_signals("scored_messages", p),
            ],
        )
    )
    return statements
